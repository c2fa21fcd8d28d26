// How long a monitor holds its video so each frame's pose message is there when the frame
// shows. The hold follows the pose latency this page observes: for every analysed frame,
// the time from the frame's arrival here (its last packet) to its pose message's arrival.
// Hold = that latency's p95 + one frame interval (a message a little later than usual still
// lands while its frame is on screen), within a floor and a ceiling.

import { near } from './frame_keys.js';

export const HOLD_LIMITS_MS = { floor: 30, ceiling: 1500 };
const SAMPLES = 150; // latencies: about 10 s at 15 fps
const HELD_SAMPLES = 30; // the hold as it is now, for the tile: about 2 s
const MIN_SAMPLES = 5; // before this many, the browser's own (shortest) hold stays
const KEEP_PENDING = 120; // frames or messages waiting for their other half
const STEP_DOWN = 0.85; // a shorter hold is approached gradually, a longer one at once

export function percentile(values, fraction) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(fraction * sorted.length) - 1)]; // nearest rank
}

// The hold for a latency p95 and a frame interval, both in milliseconds.
export function holdFor(latencyP95Ms, frameIntervalMs) {
  const wanted = latencyP95Ms + frameIntervalMs;
  return Math.round(Math.min(HOLD_LIMITS_MS.ceiling, Math.max(HOLD_LIMITS_MS.floor, wanted)));
}

export class VideoHold {
  constructor() {
    this.receiver = null;
    this.latencies = []; // ms, newest last
    this.held = []; // ms from a frame's arrival to its display, newest last
    this.frameArrivals = new Map(); // frame key -> arrival (performance.now() ms), pose not yet here
    this.messageArrivals = new Map(); // frame key -> arrival of its pose message
    this.targetMs = null; // null: not set yet, the browser's own hold
  }

  attach(receiver) {
    this.receiver = receiver;
    if (this.targetMs !== null) this.apply();
  }

  // A pose message for frame `key` arrived now.
  poseArrived(key, now = performance.now()) {
    const frameKey = near(this.frameArrivals, key);
    if (frameKey !== undefined) {
      this.addLatency(now - this.frameArrivals.get(frameKey));
      this.frameArrivals.delete(frameKey);
    } else {
      this.messageArrivals.set(key, now);
      trim(this.messageArrivals);
    }
  }

  // Frame `key`, which arrived at `receiveTime` (requestVideoFrameCallback's metadata), is
  // shown at `shownAt`.
  frameShown(key, receiveTime, shownAt) {
    if (typeof receiveTime !== 'number' || !(receiveTime > 0)) return;
    this.held.push(shownAt - receiveTime);
    if (this.held.length > HELD_SAMPLES) this.held.shift();
    const messageKey = near(this.messageArrivals, key);
    if (messageKey !== undefined) {
      this.addLatency(this.messageArrivals.get(messageKey) - receiveTime);
      this.messageArrivals.delete(messageKey);
    } else {
      this.frameArrivals.set(key, receiveTime);
      trim(this.frameArrivals);
    }
  }

  // One latency sample in ms (also the fallback when the browser gives no frame arrival
  // times: from the server receiving the frame to the pose arriving here).
  addLatency(ms) {
    if (!Number.isFinite(ms)) return;
    this.latencies.push(Math.max(0, ms));
    if (this.latencies.length > SAMPLES) this.latencies.shift();
  }

  get latencyP50Ms() { return percentile(this.latencies, 0.5); }
  get latencyP95Ms() { return percentile(this.latencies, 0.95); }
  // What the video is really held: median of frame arrival to display.
  get heldMs() { return percentile(this.held, 0.5); }

  // Recompute the hold from the samples so far; returns the hold in ms (null: not yet).
  adapt(frameIntervalMs) {
    if (this.latencies.length < MIN_SAMPLES) return this.targetMs;
    const wanted = holdFor(this.latencyP95Ms, frameIntervalMs);
    const target = this.targetMs === null || wanted >= this.targetMs ? wanted
      : Math.max(wanted, Math.round(this.targetMs * STEP_DOWN));
    if (target !== this.targetMs) {
      this.targetMs = target;
      this.apply();
    }
    return this.targetMs;
  }

  apply() {
    const receiver = this.receiver;
    if (!receiver || this.targetMs === null) return;
    if ('jitterBufferTarget' in receiver) receiver.jitterBufferTarget = this.targetMs;
    else if ('playoutDelayHint' in receiver) receiver.playoutDelayHint = this.targetMs / 1000;
  }
}

function trim(map) {
  while (map.size > KEEP_PENDING) map.delete(map.keys().next().value);
}
