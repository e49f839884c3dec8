/**
 * `GET /cnm/doctor`: the daemon's view of its host — kernel features as probed at start, host
 * tuning read now in the daemon's namespace, and which needed features are missing. The daemon
 * supplies the report (the API does not reach the kernel); without one the route says so.
 */
import { UnavailableError } from '../../errors.js';
import { sendJson } from '../respond.js';
import type { Router } from '../router.js';
import type { RouteDeps } from '../server.js';

/** The report's shape on the wire (fields as the daemon's host report has them). */
export interface DoctorView {
  features: { name: string; label: string; present: boolean | null; detail: string }[];
  missing: { by: string; feature: string; label: string }[];
  tuning: {
    sysctls: { key: string; value?: string; want: string; ok: boolean; advice: string }[];
    nics: {
      name: string;
      rxQueues: number;
      txQueues: number;
      irqs: { irq: number; name: string; affinity: string }[];
    }[];
  };
  ok: boolean;
}

/** Registers `GET /cnm/doctor`. */
export function registerDoctorRoutes(router: Router, deps: RouteDeps): void {
  router.add('GET', '/cnm/doctor', async ({ res }) => {
    if (!deps.doctor) {
      throw new UnavailableError('DOCTOR_UNAVAILABLE', 'This daemon has no host report');
    }
    sendJson(res, 200, await deps.doctor());
  });
}
