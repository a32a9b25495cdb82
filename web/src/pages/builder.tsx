import { Page } from '../common.js';

/** Placeholder until the no-code builder's procedures (`builder.*`, src/builder/) are merged. */
export function Builder() {
  return (
    <Page title="Plugin builder">
      <p>
        The no-code plugin builder (tools that call an HTTP API, tested against a live endpoint and saved as a
        custom plugin of this organization) is not available on this host yet.
      </p>
    </Page>
  );
}
