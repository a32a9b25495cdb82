import { useState } from 'preact/hooks';
import { errorMessage, signIn, type SessionInfo } from '../api.js';
import { ErrorBox, Page } from '../common.js';

export function SignIn({ onSignedIn }: { onSignedIn: (s: SessionInfo) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <Page title="Sign in">
      <form
        class="card narrow"
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          signIn(token.trim()).then(
            (s) => {
              setToken('');
              onSignedIn(s);
            },
            (err: unknown) => {
              setError(errorMessage(err));
              setBusy(false);
            },
          );
        }}
      >
        <p>
          Sign in with an organization API key (<code>hay_…</code>) or the admin token. The key is exchanged
          for a session cookie and not kept by the page.
        </p>
        <div class="field">
          <label for="sign-in-token">API key or admin token</label>
          <input
            id="sign-in-token"
            name="token"
            type="password"
            autocomplete="off"
            required
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </div>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy || token.trim() === ''}>
          Sign in
        </button>
      </form>
    </Page>
  );
}
