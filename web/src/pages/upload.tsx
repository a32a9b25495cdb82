import { useState } from 'preact/hooks';
import { uploadZip, type UploadProblem } from '../api.js';
import { Page } from '../common.js';

export function Upload() {
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<
    | { ok: true; pluginId: string; version: string }
    | { ok: false; message: string; problems: UploadProblem[] }
    | null
  >(null);
  return (
    <Page title="Upload a plugin">
      <form
        class="card narrow"
        onSubmit={(e) => {
          e.preventDefault();
          if (!file) return;
          setBusy(true);
          setResult(null);
          uploadZip(file)
            .then(setResult, (err: unknown) =>
              setResult({
                ok: false,
                message: err instanceof Error ? err.message : String(err),
                problems: [],
              }),
            )
            .finally(() => setBusy(false));
        }}
      >
        <p>A ZIP with the plugin folder (package.json with its hay manifest). Needs an admin-role key.</p>
        <div class="field">
          <label for="upload-file">Plugin ZIP</label>
          <input
            id="upload-file"
            type="file"
            accept=".zip,application/zip"
            required
            onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)}
          />
        </div>
        <button type="submit" disabled={busy || !file}>
          Upload
        </button>
      </form>
      {result?.ok === true && (
        <p class="notice" role="status">
          Installed <a href={`/plugins/${encodeURIComponent(result.pluginId)}`}>{result.pluginId}</a> v
          {result.version}
        </p>
      )}
      {result?.ok === false && (
        <div class="error" role="alert">
          <strong>Upload refused</strong>
          <p>{result.message}</p>
          {result.problems.length > 0 && (
            <table class="problems">
              <caption>Problems by file and JSON pointer</caption>
              <thead>
                <tr>
                  <th scope="col">File</th>
                  <th scope="col">Pointer</th>
                  <th scope="col">Problem</th>
                </tr>
              </thead>
              <tbody>
                {result.problems.map((p, i) => (
                  <tr key={i}>
                    <td class="mono">{p.file ?? ''}</td>
                    <td class="mono">{p.pointer ?? ''}</td>
                    <td>{p.message}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </Page>
  );
}
