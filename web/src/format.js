// Times arrive as UTC ISO 8601; people read them in their own time zone.

export function formatTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '—' : date.toLocaleTimeString();
}

export function formatDateTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '—' : date.toLocaleString();
}

const pluralRules = new Intl.PluralRules('en');

/**
 * A count with its noun, by the language's plural rules (Intl.PluralRules):
 * `countOf(1, 'session')` is "1 session", `countOf(0, 'session')` "0 sessions".
 */
export function countOf(count, one, other = `${one}s`) {
  return `${count} ${pluralRules.select(count) === 'one' ? one : other}`;
}

export function formatRate(rate) {
  if (typeof rate !== 'number' || Number.isNaN(rate)) return '—';
  return `${Math.round(rate * 100)}%`;
}

export const STATUS_LABELS = {
  present: 'Present',
  late: 'Late',
  excused: 'Excused',
  absent: 'Absent',
};

export function statusLabel(status) {
  return STATUS_LABELS[status] ?? status ?? '—';
}
