// A small fetch wrapper for the JSON API: Bearer token, `{detail}` errors.

export class ApiError extends Error {
  /** @param {number} status @param {string} detail @param {string|null} [reason] a refused check-in's `reason` */
  constructor(status, detail, reason = null) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail;
    this.reason = reason;
  }
}

async function errorFrom(response) {
  let detail = `${response.status} ${response.statusText}`.trim();
  let reason = null;
  try {
    const body = await response.json();
    if (typeof body?.detail === 'string') detail = body.detail;
    else if (body?.detail != null) detail = JSON.stringify(body.detail);
    if (typeof body?.reason === 'string') reason = body.reason;
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(response.status, detail, reason);
}

/**
 * @param {string} path e.g. `/api/courses`
 * @param {{token?: string|null, method?: string, body?: unknown}} [options]
 */
export async function apiRequest(path, { token, method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'The server could not be reached. Check your connection and try again.');
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

/**
 * Download a file that needs the Bearer token: fetch it, then save the blob.
 * (A plain link cannot carry the token, and the token never goes in a URL.)
 */
export async function downloadWithToken(path, token, fallbackName) {
  let response;
  try {
    response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  } catch {
    throw new ApiError(0, 'The server could not be reached. Check your connection and try again.');
  }
  if (!response.ok) throw await errorFrom(response);
  const blob = await response.blob();
  const disposition = response.headers.get('Content-Disposition') ?? '';
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const name = match ? decodeURIComponent(match[1]) : fallbackName;
  const href = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = href;
  link.download = name;
  link.style.display = 'none';
  document.body.append(link);
  link.click();
  link.remove();
  // Give the browser a moment to start the download before the URL goes.
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
  return name;
}
