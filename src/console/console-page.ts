/**
 * The console's page and stylesheet, kept as strings so a compiled build serves them without
 * copying files. The page has no inline script or style (the Content-Security-Policy forbids both):
 * everything it does is in console.js (web/console-app.ts).
 */

export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Payments admin console</title>
<link rel="stylesheet" href="/console/console.css">
<script type="module" src="/console/console.js"></script>
</head>
<body>
<header class="top">
  <span class="brand">Payments console</span>
  <nav id="nav" hidden>
    <a href="#/payments">Payments</a>
    <a href="#/discrepancies">Discrepancies</a>
    <a href="#/settlements">Settlements</a>
    <a href="#/reconciliation">Reconciliation</a>
    <a href="#/merchants">Merchants</a>
    <button type="button" id="sign-out" class="link">Sign out</button>
  </nav>
</header>
<main id="app"><p class="muted">Loading…</p></main>
</body>
</html>
`;

export const CONSOLE_CSS = `
:root { --fg: #1d2330; --muted: #5d6675; --line: #d9dde5; --bg: #f6f7f9; --accent: #1f5fd1; --bad: #b42318; --ok: #067647; --warn: #b54708; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; padding: .75rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 600; }
nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: center; }
nav a, .link { color: var(--accent); text-decoration: none; background: none; border: 0; padding: 0; font: inherit; cursor: pointer; }
nav a.active { font-weight: 600; text-decoration: underline; }
main { max-width: 1200px; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.3rem; margin: .25rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.05rem; margin: 1.25rem 0 .5rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem; margin-bottom: 1rem; }
form.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: .75rem; align-items: end; }
label { display: flex; flex-direction: column; gap: .2rem; font-size: .85rem; color: var(--muted); }
input, select, textarea { font: inherit; color: var(--fg); padding: .45rem .5rem; border: 1px solid var(--line); border-radius: 6px; background: #fff; min-width: 0; }
button { font: inherit; padding: .45rem .9rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); }
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; background: #fff; }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .8rem; color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .85em; word-break: break-all; }
.muted { color: var(--muted); }
.error { color: var(--bad); background: #fef3f2; border: 1px solid #fecdca; border-radius: 6px; padding: .5rem .75rem; }
.notice { color: var(--ok); }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: 999px; font-size: .78rem; font-weight: 600; background: #eef2f6; }
.badge.SUCCEEDED, .badge.PAID, .badge.PAID_OUT, .badge.RESOLVED, .badge.APPLIED { background: #ecfdf3; color: var(--ok); }
.badge.PENDING, .badge.PROCESSING, .badge.PAYING_OUT, .badge.OPEN { background: #fffaeb; color: var(--warn); }
.badge.FAILED, .badge.CLOSED, .badge.PAYOUT_FAILED { background: #fef3f2; color: var(--bad); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.payment-head { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
.payment-head .card { flex: 1 1 320px; }
.qr { text-align: center; }
.qr canvas { width: 200px; height: 200px; image-rendering: pixelated; }
ol.timeline { list-style: none; margin: 0; padding: 0; }
ol.timeline li { display: grid; grid-template-columns: 11rem 1fr; gap: .75rem; padding: .6rem 0; border-bottom: 1px solid var(--line); }
ol.timeline .when { color: var(--muted); font-size: .85rem; font-variant-numeric: tabular-nums; }
ol.timeline .kind { font-weight: 600; margin-right: .4rem; }
ol.timeline pre { margin: .35rem 0 0; white-space: pre-wrap; word-break: break-all; font-size: .8rem; background: var(--bg); padding: .4rem; border-radius: 4px; max-height: 12rem; overflow: auto; }
.resolve { display: flex; flex-wrap: wrap; gap: .5rem; margin-top: .5rem; }
.resolve input { flex: 1 1 220px; }
.signin { max-width: 420px; margin: 3rem auto; }
.signin form { display: flex; flex-direction: column; gap: .75rem; }
.pager { margin-top: .75rem; }
@media (max-width: 640px) {
  main { padding: .5rem; }
  ol.timeline li { grid-template-columns: 1fr; gap: .2rem; }
  table.stack thead { display: none; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack tr { border-bottom: 2px solid var(--line); padding: .35rem 0; }
  table.stack td { border: 0; padding: .15rem .4rem; text-align: left; }
  table.stack td::before { content: attr(data-label) ": "; color: var(--muted); font-size: .8rem; }
  td.num { text-align: left; }
}
`;
