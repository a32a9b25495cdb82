/** Renders an MCP tool result (untrusted): text as text, images as data: URLs of image types only. */
interface Content {
  type?: unknown;
  text?: unknown;
  data?: unknown;
  mimeType?: unknown;
  uri?: unknown;
  name?: unknown;
  resource?: { uri?: unknown; text?: unknown; mimeType?: unknown };
}

const IMAGE_TYPES = /^image\/(png|jpeg|gif|webp)$/;

export function ToolResult({ result, durationMs }: { result: unknown; durationMs: number }) {
  const r = (result ?? {}) as { content?: unknown; structuredContent?: unknown; isError?: unknown };
  const content = Array.isArray(r.content) ? (r.content as Content[]) : [];
  const isError = r.isError === true;
  return (
    <div class={`tool-result ${isError ? 'is-error' : 'is-ok'}`} role="status" aria-live="polite">
      <p class="result-head">
        <strong>{isError ? 'Tool error (isError)' : 'Result'}</strong>
        <span class="muted"> in {Math.round(durationMs)} ms</span>
      </p>
      {content.map((c, i) => {
        if (c.type === 'text') return <pre key={i}>{String(c.text ?? '')}</pre>;
        if (c.type === 'image' && typeof c.data === 'string' && typeof c.mimeType === 'string')
          return IMAGE_TYPES.test(c.mimeType) && /^[A-Za-z0-9+/=\s]*$/.test(c.data) ? (
            <img
              key={i}
              class="result-image"
              src={`data:${c.mimeType};base64,${c.data}`}
              alt="Image returned by the tool"
            />
          ) : (
            <p key={i} class="muted">
              (image of type {c.mimeType} not shown)
            </p>
          );
        if (c.type === 'resource' && c.resource)
          return (
            <div key={i}>
              <p class="muted mono">{String(c.resource.uri ?? '')}</p>
              {typeof c.resource.text === 'string' && <pre>{c.resource.text}</pre>}
            </div>
          );
        if (c.type === 'resource_link')
          return (
            <p key={i} class="mono">
              {String(c.name ?? '')} {String(c.uri ?? '')}
            </p>
          );
        return <pre key={i}>{JSON.stringify(c, null, 2)}</pre>;
      })}
      {r.structuredContent !== undefined && (
        <details open>
          <summary>Structured content</summary>
          <pre>{JSON.stringify(r.structuredContent, null, 2)}</pre>
        </details>
      )}
    </div>
  );
}
