// A component whose run() fails after the admin server is up, started as its own process by component.test.ts.
import { defineComponent, runComponent } from '../../runtime/component.ts';
import { UsageError } from '../../runtime/errors.ts';

const how = process.argv[2];
const failing = defineComponent({
  name: 'failing',
  summary: 'fails to start',
  kinds: ['Service'],
  defaultAdmin: '127.0.0.1:0',
  flags: {},
  async run(ctx) {
    ctx.admin.addReadinessCheck('never', () => ({ ok: true }));
    await new Promise((r) => setTimeout(r, 300));
    if (how === 'usage') throw new UsageError('netplane failing: this combination of flags cannot work');
    throw new Error('the socket could not be made');
  },
});
await runComponent(failing, process.argv.slice(3), '0.0.0');
