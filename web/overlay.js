// Draws a BlazePose skeleton (33 keypoints, pixels of the analysed frame) on a canvas.

export const SKELETON_COLOR = '#00ff66';
export const JOINT_COLOR = '#ffdd00';
const MIN_CONFIDENCE = 0.5;

// Pairs of keypoint ids: face outline, arms, torso, legs and feet.
export const CONNECTIONS = [
  [0, 1], [1, 2], [2, 3], [3, 7], [0, 4], [4, 5], [5, 6], [6, 8], [9, 10],
  [11, 12], [11, 13], [13, 15], [15, 17], [15, 19], [15, 21], [17, 19],
  [12, 14], [14, 16], [16, 18], [16, 20], [16, 22], [18, 20],
  [11, 23], [12, 24], [23, 24], [23, 25], [24, 26], [25, 27], [26, 28],
  [27, 29], [28, 30], [29, 31], [30, 32], [27, 31], [28, 32],
];

// Sizes the canvas to its element and draws every pose of a frame_processed message.
// `mirror` flips horizontally (front camera preview). Returns the number of poses drawn.
export function drawPoses(canvas, message, { mirror = false } = {}) {
  const rect = canvas.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(rect.width * ratio));
  const height = Math.max(1, Math.round(rect.height * ratio));
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, width, height);
  if (!message || !message.pose_data || !message.width) return 0;
  // The video is letterboxed (object-fit: contain): fit the frame the same way.
  const scale = Math.min(width / message.width, height / message.height);
  const offsetX = (width - message.width * scale) / 2;
  const offsetY = (height - message.height * scale) / 2;
  const px = (x) => (mirror ? width - (offsetX + x * scale) : offsetX + x * scale);
  const py = (y) => offsetY + y * scale;
  const poses = message.pose_data.pose || [];
  ctx.lineWidth = Math.max(2, 3 * ratio * Math.min(1.5, scale * 1.5));
  ctx.lineCap = 'round';
  for (const pose of poses) {
    const points = pose.keypoints;
    ctx.strokeStyle = SKELETON_COLOR;
    ctx.beginPath();
    for (const [a, b] of CONNECTIONS) {
      const p = points[a];
      const q = points[b];
      if (!p || !q || p.confidence < MIN_CONFIDENCE || q.confidence < MIN_CONFIDENCE) continue;
      ctx.moveTo(px(p.x), py(p.y));
      ctx.lineTo(px(q.x), py(q.y));
    }
    ctx.stroke();
    ctx.fillStyle = JOINT_COLOR;
    for (const p of points) {
      if (p.confidence < MIN_CONFIDENCE) continue;
      ctx.beginPath();
      ctx.arc(px(p.x), py(p.y), ctx.lineWidth * 1.2, 0, 2 * Math.PI);
      ctx.fill();
    }
  }
  return poses.length;
}
