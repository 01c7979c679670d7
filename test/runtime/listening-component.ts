// A component with listen flags of its own (declared `listens`), started as its own process by component.test.ts.
import { defineComponent, runComponent } from '../../runtime/component.ts';
import { UsageError } from '../../runtime/errors.ts';
import { listFlag, parseHostPort, valueFlag } from '../../runtime/flags.ts';

const listening = defineComponent({
  name: 'listening',
  summary: 'listens where its flags say',
  kinds: ['Service'],
  defaultAdmin: '127.0.0.1:0',
  flags: {
    listen: listFlag({ value: 'ADDR:PORT', help: 'serve here', parse: parseHostPort, listens: true }),
    health: valueFlag({ value: 'ADDR:PORT', help: 'serve /health here', parse: parseHostPort, listens: true }),
  },
  async run(ctx, f) {
    for (const at of f.listen) await ctx.admin.listen(at);
    if (f.health) await ctx.admin.listen(f.health, '/health');
    ctx.log.info('listening serving');
  },
});
// As bin/netplane.ts: a UsageError is one line on stderr and exit 2.
await runComponent(listening, process.argv.slice(2), '0.0.0').catch((e: unknown) => {
  if (!(e instanceof UsageError)) throw e;
  process.stderr.write(`${e.message}\n`);
  process.exitCode = 2;
});
