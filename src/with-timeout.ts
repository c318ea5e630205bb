// A promise raced against a timer that is cleared either way: the one bounded wait for MQTT stops and bridge requests.

/** `p`, or a rejection with `onTimeout(ms)` when it has not settled within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: (ms: number) => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout(ms)), ms);
    p.then((v) => { clearTimeout(t); resolve(v); }, (e) => { clearTimeout(t); reject(e); });
  });
}
