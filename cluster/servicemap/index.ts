// The service map's public face.
export { ServiceMap, ChangeTracker } from './servicemap.ts';
export { buildServiceInfo, servicePortKey, serviceProxyNameLabel } from './build.ts';
export type { EndpointAddress, EndpointInfo, ServiceCommon, ServiceInfo, ServiceMapChanges, ServicePortInfo } from './types.ts';
