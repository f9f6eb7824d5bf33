// Package e2e holds Warden's end-to-end tests through the Temporal Web UI:
// its HTTP API (what the browser calls) and a real headless Chromium.
package e2e
