import { initBackend } from '../lib/backend';

// Every test file runs on the same backend selection as the library (wasm here unless OPDLAB_BACKEND says otherwise).
await initBackend({ quiet: true });
