// The WHIP and WHEP clients under test, as a page would include them (bundled by esbuild
// into dist/clients.js: window.TestClients.WHIPClient, window.TestClients.WebRTCPlayer).
export { WHIPClient } from "@eyevinn/whip-web-client";
export { WebRTCPlayer } from "@eyevinn/webrtc-player";
