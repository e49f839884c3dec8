/**
 * Kubernetes label selectors: `matchLabels` and `matchExpressions` are ANDed; an empty selector
 * matches everything.
 */
import type { LabelSelector } from './types.js';

/**
 * True when `labels` satisfy `selector`.
 * @example matchesSelector({ matchLabels: { app: 'web' } }, { app: 'web', tier: 'a' }) === true
 */
export function matchesSelector(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!has || !values.includes(value!)) return false;
        break;
      case 'NotIn':
        // A missing key satisfies NotIn (Kubernetes' labels.Selector semantics).
        if (has && values.includes(value!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** True for `{}` (no matchLabels, no matchExpressions): selects everything. */
export function selectsAll(selector: LabelSelector): boolean {
  return (
    Object.keys(selector.matchLabels ?? {}).length === 0 &&
    (selector.matchExpressions ?? []).length === 0
  );
}
