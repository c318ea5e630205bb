// One bounded HTTPS form POST to a token endpoint with node:https (works in the CJS bundle and the SEA binary; takes an extra CA), or an injected fetch.
//
// node:http and node:https (with _http_agent, _http_client, the parser binding...: +0.6 MiB) are imported at the first
// request: an agent without OAuth mailboxes never evaluates them.
import type { RequestOptions } from 'node:https';

export interface FormPostRequest {
  url: URL;
  form: Record<string, string>;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Largest response body accepted. */
  maxBytes: number;
  /** Extra trust anchors (replace the system store, as in node:tls). */
  ca?: string | Buffer | Array<string | Buffer>;
}

export interface FormPostResponse {
  status: number;
  /** Lower-case header name -> value. */
  headers: Record<string, string>;
  body: string;
}

/** Why a request produced no HTTP response. */
export class TransportError extends Error {
  constructor(readonly kind: 'timeout' | 'network' | 'too-large', message: string, readonly detail?: string) {
    super(message);
    this.name = 'TransportError';
  }
}

/** The subset of WHATWG fetch the manager needs (global fetch satisfies it). */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal; redirect: 'manual' },
) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;

function encode(form: Record<string, string>): string {
  return new URLSearchParams(form).toString();
}

export function postForm(req: FormPostRequest, fetchImpl?: FetchLike): Promise<FormPostResponse> {
  return fetchImpl ? viaFetch(req, fetchImpl) : viaNode(req);
}

async function viaFetch(req: FormPostRequest, fetchImpl: FetchLike): Promise<FormPostResponse> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), req.timeoutMs);
  try {
    const res = await fetchImpl(req.url.toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...req.headers },
      body: encode(req.form),
      signal: ac.signal,
      redirect: 'manual',
    });
    const body = await res.text();
    if (Buffer.byteLength(body) > req.maxBytes) throw new TransportError('too-large', `response larger than ${req.maxBytes} bytes`);
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'retry-after']) {
      const v = res.headers.get(h);
      if (v !== null) headers[h] = v;
    }
    return { status: res.status, headers, body };
  } catch (e) {
    if (e instanceof TransportError) throw e;
    if (ac.signal.aborted) throw new TransportError('timeout', `no answer within ${req.timeoutMs} ms`);
    throw new TransportError('network', 'request failed', networkDetail(e));
  } finally {
    clearTimeout(timer);
  }
}

async function viaNode(req: FormPostRequest): Promise<FormPostResponse> {
  const isHttps = req.url.protocol === 'https:';
  const { request } = isHttps ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const body = Buffer.from(encode(req.form), 'utf8');
    const options: RequestOptions = {
      method: 'POST',
      hostname: req.url.hostname.replace(/^\[|\]$/g, ''),
      port: req.url.port || (isHttps ? 443 : 80),
      path: req.url.pathname + req.url.search,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length), ...req.headers },
      agent: false,
    };
    if (isHttps && req.ca !== undefined) options.ca = req.ca;
    let done = false;
    const finish = (err: Error | null, res?: FormPostResponse) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(res!);
    };
    const r = request(options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > req.maxBytes) {
          finish(new TransportError('too-large', `response larger than ${req.maxBytes} bytes`));
          r.destroy();
          return;
        }
        chunks.push(d);
      });
      res.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers[k] = v;
        finish(null, { status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (e) => finish(new TransportError('network', 'response interrupted', networkDetail(e))));
      res.on('aborted', () => finish(new TransportError('network', 'response interrupted')));
    });
    const timer = setTimeout(() => {
      finish(new TransportError('timeout', `no answer within ${req.timeoutMs} ms`));
      r.destroy();
    }, req.timeoutMs);
    r.on('error', (e) => finish(new TransportError('network', 'request failed', networkDetail(e))));
    r.end(body);
  });
}

/** A short, secret-free description of a socket/TLS error: its code and, for TLS, the reason. */
function networkDetail(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown; cause?: unknown };
  const inner = err && typeof err === 'object' && err.cause && typeof err.cause === 'object' ? (err.cause as { code?: unknown; message?: unknown }) : undefined;
  const code = typeof err?.code === 'string' ? err.code : typeof inner?.code === 'string' ? inner.code : undefined;
  const msg = typeof inner?.message === 'string' ? inner.message : typeof err?.message === 'string' ? err.message : '';
  return code ? `${code}${msg && !msg.includes(code) ? ` (${msg})` : ''}` : msg || 'unknown error';
}
