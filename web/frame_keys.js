// A monitor finds a video frame's pose by its key: the frame's RTP timestamp minus the
// stream's offset, which is the `frame_pts` of its `frame_processed` (docs/protocol.md,
// `video_timing`), modulo 2^32, give or take a 90 kHz tick of rounding.

export const PTS_WRAP = 2 ** 32;
export const NEAR_TICKS = 2;

export function sameFrame(key, other) {
  const ticks = (key - other + PTS_WRAP) % PTS_WRAP;
  return ticks <= NEAR_TICKS || ticks >= PTS_WRAP - NEAR_TICKS;
}

// The key a map holds for this frame (`key` or a tick or two either side), else undefined.
export function near(map, key) {
  for (const delta of [0, -1, 1, -2, 2]) {
    const nearKey = (key + delta + PTS_WRAP) % PTS_WRAP;
    if (map.has(nearKey)) return nearKey;
  }
  return undefined;
}
