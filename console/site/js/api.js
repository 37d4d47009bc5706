// The REST APIs through the gateway, with the user's bearer token; errors are RFC 9457 problems.
import { token } from "./auth.js";

/** An API error carrying the problem document. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Call an API path (under /api/v1) and return its JSON (null for 204). */
export async function api(path, { method = "GET", body, params } = {}) {
  const url = new URL(`/api/v1${path}`, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value == null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) url.searchParams.append(name, item);
  }
  const headers = { Authorization: `Bearer ${token()}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    window.dispatchEvent(new CustomEvent("ql:unauthorised"));
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      problem = { title: response.statusText };
    }
    throw new ApiError(response.status, problem);
  }
  return response.status === 204 ? null : response.json();
}

/** Every item of a paginated list (following next_cursor), up to `max` items. */
export async function listAll(path, params = {}, max = 2000) {
  const items = [];
  let cursor;
  do {
    const pageOf = await api(path, { params: { ...params, limit: 500, cursor } });
    items.push(...pageOf.items);
    cursor = pageOf.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/** A value or null when the API answers 404 (e.g. a unit without a score yet). */
export async function orNull(promise) {
  try {
    return await promise;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}
