import type { ServerResponse } from 'node:http';

/**
 * @tus/server writes its answers as web Responses: a string body brings `Content-Type:
 * text/plain`, and onResponseError cannot set headers. The headers the error mapping chose
 * (JSON, Retry-After) replace those of the same name when the answer's head is written.
 */
export function answerHeadersAtWriteHead(res: ServerResponse, chosen: () => Record<string, string> | undefined): void {
  const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
  (res as unknown as { writeHead: (...args: unknown[]) => ServerResponse }).writeHead = (...args: unknown[]) => {
    const headers = chosen();
    if (headers === undefined) return writeHead(...args);
    const replaced = new Set(Object.keys(headers).map((n) => n.toLowerCase()));
    const without = (given: unknown): unknown => {
      if (Array.isArray(given)) {
        const pairs: unknown[] = [];
        for (let i = 0; i + 1 < given.length; i += 2) if (!replaced.has(String(given[i]).toLowerCase())) pairs.push(given[i], given[i + 1]);
        return pairs;
      }
      if (given !== null && typeof given === 'object') {
        return Object.fromEntries(Object.entries(given).filter(([name]) => !replaced.has(name.toLowerCase())));
      }
      return given;
    };
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    return writeHead(...args.map(without));
  };
}
