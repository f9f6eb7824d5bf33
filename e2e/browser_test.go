package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// browser starts headless Chromium (Debian's /usr/bin/chromium, or
// $WARDEN_CHROMIUM) with the flags this closed network needs.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("WARDEN_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	_, err := os.Stat(path)
	require.NoError(t, err, "Chromium is required for the Web UI test (apt-get install chromium; .ci/run does)")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelT)
	return ctx
}

// visibleJS finds the first element matching a selector that is really
// visible: the UI renders every dialog and action button twice, one copy hidden.
const visibleJS = `(sel, root) => Array.from((root || document).querySelectorAll(sel)).find(e => {
	const s = getComputedStyle(e); const r = e.getBoundingClientRect();
	return s.visibility !== 'hidden' && s.display !== 'none' && r.width > 0 && r.height > 0; })`

// js runs an expression and returns its JSON-decoded value.
func js[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

// waitFor polls a boolean expression until it holds.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			shot(t, ctx, "failure-"+regexp.MustCompile(`\W+`).ReplaceAllString(what, "-"))
			t.Fatalf("timed out waiting for %s (%v)", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// click clicks the visible element matching sel (inside root, a selector, when set).
func click(t *testing.T, ctx context.Context, what, sel, root string) {
	t.Helper()
	rootExpr := "document"
	if root != "" {
		rootExpr = fmt.Sprintf("document.querySelector(%q)", root)
	}
	expr := fmt.Sprintf(`(() => { const e = (%s)(%q, %s); if (!e) return false; e.scrollIntoView({block: 'center'}); e.click(); return true; })()`, visibleJS, sel, rootExpr)
	waitFor(t, ctx, what, expr)
}

var screenshotDir = func() string {
	if os.Getenv("WARDEN_UPDATE_SCREENSHOTS") != "" {
		return "../docs/screenshots"
	}
	return os.TempDir()
}()

// shot saves a screenshot of the page.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	_ = os.MkdirAll(screenshotDir, 0o755)
	path := filepath.Join(screenshotDir, "approvals-"+name+".png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

// fillEditor replaces the CodeMirror payload editor's text in the open
// update dialog, blurs it and lets the dialog settle.
func fillEditor(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	click(t, ctx, "payload editor", "dialog#update-confirmation-modal[open] .cm-content", "")
	require.True(t, js[bool](t, ctx, `(() => { const e = document.querySelector('dialog#update-confirmation-modal[open] .cm-content'); e.focus();
		const r = document.createRange(); r.selectNodeContents(e); const s = getSelection(); s.removeAllRanges(); s.addRange(r); return true; })()`))
	_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: text})
	require.NoError(t, err)
	js[bool](t, ctx, `(() => { document.activeElement.blur(); return true; })()`)
	_, err = chromedp.Run(ctx, chromedp.Sleep(400*time.Millisecond))
	require.NoError(t, err)
}

// TestApproveInTheWebUI is the approver's whole job in a real browser: open
// the inbox link, find the waiting run, read the request on its page, send
// the approve Update through the UI's own form with the JSON from the
// page — first as the requester (refused, message shown), then as alice —
// and watch the run complete.
func TestApproveInTheWebUI(t *testing.T) {
	s := startStack(t)
	id, p := s.startRefund(t, 0)
	require.Eventually(t, func() bool {
		entries, err := s.client.Inbox(context.Background(), warden.InboxFilter{Tenant: "acme"})
		return err == nil && len(entries) == 1 && entries[0].WorkflowID == id && entries[0].Risk == warden.RiskHigh
	}, 30*time.Second, 250*time.Millisecond, "the run never showed in the inbox query")
	newUIAPI(t, s.srv.UIAddress) // the UI reaches the frontend
	ctx := browser(t)

	// 1. The inbox link lists the run.
	_, err := chromedp.Run(ctx, chromedp.Navigate(warden.InboxURL(s.srv.UIAddress, "default", warden.InboxFilter{})))
	require.NoError(t, err)
	row := fmt.Sprintf(`a[href*="/workflows/%s/"]`, id)
	waitFor(t, ctx, "the run in the inbox", fmt.Sprintf(`!!document.querySelector(%q)`, row))
	shot(t, ctx, "1-inbox")

	// 2. The run's page explains the request (current details on "User Metadata").
	click(t, ctx, "the run's row", row, "")
	waitFor(t, ctx, "the workflow page", `!!document.querySelector('h1[data-testid="workflow-id-heading"]')`)
	click(t, ctx, "the User Metadata tab", `a[href*="metadata"], button[id*="metadata"], [data-testid*="metadata"]`, "")
	// The Markdown renders in sandboxed iframes: read their srcdoc when the
	// document itself is out of reach.
	const frameText = `Array.from(document.querySelectorAll('iframe[title="output"]')).map(f => {
		if (f.contentDocument && f.contentDocument.body) return f.contentDocument.body.textContent;
		return new DOMParser().parseFromString(f.srcdoc || '', 'text/html').body.textContent; }).join('\n')`
	waitFor(t, ctx, "current details", frameText+`.includes('request_id')`)
	details := js[string](t, ctx, frameText)
	shot(t, ctx, "2-request")
	for _, want := range []string{"issue_refund", "risk high", p.RequestID, "alice, bob, carol", "Expires"} {
		require.Contains(t, details, want)
	}
	example := regexp.MustCompile(`\{"request_id":"[^"]+","decision":"approve","approver":"<your name>","reason":"<why>"\}`).FindString(details)
	require.NotEmpty(t, example, "the page shows the JSON to paste:\n%s", details)

	// 3. Send an Update with the page's JSON: as the requester first.
	sendUpdate := func(approver, reason string) {
		click(t, ctx, "More Actions", `button[aria-controls="workflow-actions"]`, "")
		click(t, ctx, "Send an Update", `li[data-testid="update-button"]`, "")
		waitFor(t, ctx, "the update dialog", `!!document.querySelector('dialog#update-confirmation-modal[open]')`)
		click(t, ctx, "the update name list", `[data-testid="update-select-button"]`, "dialog#update-confirmation-modal[open]")
		click(t, ctx, "the approve update", `ul#update-select-select li[role="option"]`, "")
		body := strings.NewReplacer("<your name>", approver, "<why>", reason).Replace(example)
		var check warden.ApprovalDecision
		require.NoError(t, json.Unmarshal([]byte(body), &check))
		fillEditor(t, ctx, body)
		click(t, ctx, "Submit", `button[data-testid="confirm-modal-button"]`, "dialog#update-confirmation-modal[open]")
	}
	sendUpdate("dana", "I asked for it")
	waitFor(t, ctx, "the validator's refusal", `(() => { const a = document.querySelector('dialog#update-confirmation-modal[open] [role="alert"]');
		return !!a && a.innerText.includes('may not approve'); })()`)
	shot(t, ctx, "3-refused")
	click(t, ctx, "Cancel", `dialog#update-confirmation-modal[open] button:not([data-testid="confirm-modal-button"])`, "")
	_, err = chromedp.Run(ctx, chromedp.Sleep(500*time.Millisecond))
	require.NoError(t, err)

	sendUpdate("alice", "customer verified")
	waitFor(t, ctx, "the success toast", `(() => Array.from(document.querySelectorAll('[role="log"]')).some(e => e.innerText.includes('Update successful')))()`)
	shot(t, ctx, "4-approved")

	res, err := s.client.Result(ctx, id)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res.Status)
	require.Equal(t, 1, res.ToolCalls["executed"])
	_, err = chromedp.Run(ctx, chromedp.Reload())
	require.NoError(t, err)
	waitFor(t, ctx, "the completed page", `document.body.innerText.includes('Completed')`)
	shot(t, ctx, "5-completed")
}
