/** Every route of the API, in one list: the app registers them, the OpenAPI document and the role test read them. */
import { buildOpenApi } from '../openapi.js';
import { defineRoute, type RouteDef } from '../route.js';
import { sessionRoutes } from '../session.js';
import { streamRoutes } from '../stream.js';
import { agentRoutes } from './agent.js';
import { alertRoutes } from './alerts.js';
import { auditLogRoutes } from './audit-log.js';
import { changeRoutes } from './changes.js';
import { hostRoutes, jobReportRoute } from './hosts.js';
import { incidentRoutes } from './incidents.js';
import { monitorRoutes } from './monitors.js';
import { systemRoutes } from './system.js';
import { tokenRoutes } from './tokens.js';
import { trafficRoutes } from './traffic.js';

const openApiRoute = defineRoute({
  method: 'GET',
  path: '/openapi.json',
  access: 'public',
  tag: 'system',
  summary: 'This API as an OpenAPI 3.1 document, generated from the schemas that validate requests',
  handler: async () => document,
});

export const ROUTES: readonly RouteDef[] = [
  openApiRoute,
  ...systemRoutes,
  ...tokenRoutes,
  ...hostRoutes,
  jobReportRoute,
  ...changeRoutes,
  ...auditLogRoutes,
  ...agentRoutes,
  ...monitorRoutes,
  ...trafficRoutes,
  ...alertRoutes,
  ...incidentRoutes,
  ...sessionRoutes,
  ...streamRoutes,
];

const document = buildOpenApi(ROUTES);
