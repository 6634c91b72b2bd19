// Debian's chromium (apt-get install chromium), which the browser tests drive with playwright-core;
// no tool downloads a browser of its own.
export const CHROMIUM = '/usr/bin/chromium';

// The machine reaches nothing but loopback, and a test must not try: these switch off chromium's
// own calls home (updates, sync, safe browsing, metrics, DNS prefetch), and the resolver rule fails
// every host but loopback's, so even a stray URL in the page could not leave the machine.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox', // the tests may run as root, where chromium's sandbox refuses to start
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--disable-breakpad',
  '--disable-client-side-phishing-detection',
  '--disable-quic',
  '--no-pings',
  '--metrics-recording-only',
  '--disable-features=OptimizationHints,Translate,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];
