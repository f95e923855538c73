// Prometheus's HTTP API, through the page's own origin (nginx proxies /api/v1/).

export class QueryError extends Error {}

async function answer(response) {
  const text = await response.text();
  let payload;
  try {
    payload = JSON.parse(text);
  } catch {
    throw new QueryError(`HTTP ${response.status} ${response.statusText}: ${text.slice(0, 200)}`);
  }
  if (payload.status !== "success") {
    throw new QueryError(payload.error || `HTTP ${response.status} from Prometheus`);
  }
  return payload.data;
}

async function call(path, params, method = "POST") {
  const body = new URLSearchParams(params);
  let response;
  try {
    response = method === "POST"
      ? await fetch(`/api/v1/${path}`, { method, body })
      : await fetch(`/api/v1/${path}?${body}`);
  } catch (error) {
    throw new QueryError(`Prometheus did not answer: ${error.message}`);
  }
  return answer(response);
}

export function queryRange(expr, start, end, step) {
  return call("query_range", [["query", expr], ["start", start], ["end", end], ["step", step]]);
}

export function queryInstant(expr, time) {
  return call("query", [["query", expr], ["time", time]]);
}

export function labelValues(label, match, range) {
  const params = [["start", range.from], ["end", range.to]];
  if (match) params.push(["match[]", match]);
  return call(`label/${encodeURIComponent(label)}/values`, params, "GET");
}
