// A station's 3-D skeleton (`pose3d` of `station_processed`: 33 BlazePose joints in metres),
// drawn with three.js on a floor grid; drag to orbit, wheel to zoom. Drawn only when a pose
// arrives or the view moves, never in a loop.
//
// The station's world frame (docs/protocol.md, stations) is the person's: Y up, the floor at
// y = 0. A board calibration not anchored to the floor leaves the reference camera's frame
// (Y down): the view turns such a pose upright, and always puts the floor under the feet and
// the person in the middle, so it reads well either way.

import * as THREE from './vendor/three.module.min.js';
import { CONNECTIONS } from './overlay.js';

const MIN_CONFIDENCE = 0.3;
const LEFT = new Set([1, 2, 3, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31]);
const RIGHT = new Set([4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32]);
const COLORS = { left: 0xffa53d, right: 0x4cb8ff, centre: 0x00ff66, joint: 0xffdd00 };
const BONE_RADIUS_M = 0.018;
const JOINT_RADIUS_M = 0.03;
const UP = new THREE.Vector3(0, 1, 0);

// Keypoints that are there: [x, y, z] for each joint seen well enough, else null.
function usableJoints(pose3d) {
  return pose3d.map((joint) => {
    if (!joint || !(joint.confidence >= MIN_CONFIDENCE)) return null;
    const point = [joint.x, joint.y, joint.z];
    return point.every(Number.isFinite) ? point : null;
  });
}

function mean(points) {
  const seen = points.filter(Boolean);
  if (!seen.length) return null;
  return [0, 1, 2].map((axis) => seen.reduce((sum, point) => sum + point[axis], 0) / seen.length);
}

export class Skeleton3D {
  // `container`: an element sized by the page; the canvas fills it.
  constructor(container) {
    this.container = container;
    this.joints = 0; // joints drawn in the newest pose (read by the browser tests)
    this.frames = 0; // poses drawn
    this.orbit = { azimuth: Math.PI / 5, elevation: 0.25, distance: 3.6 };
    this.centre = null; // smoothed [x, z] of the hips, so the view does not jitter
    this.floor = null; // smoothed lowest joint height
    this.pending = false;
    try {
      this.renderer = new THREE.WebGLRenderer({ antialias: true, alpha: false });
    } catch (error) {
      this.renderer = null; // no WebGL here: the page says so instead
      this.error = error.message;
      return;
    }
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.setClearColor(0x0d0f12);
    this.canvas = this.renderer.domElement;
    this.canvas.classList.add('skeleton3d');
    container.prepend(this.canvas);
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(45, 1, 0.05, 50);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x303840, 2.2));
    const light = new THREE.DirectionalLight(0xffffff, 1.5);
    light.position.set(2, 4, 3);
    this.scene.add(light);
    const grid = new THREE.GridHelper(4, 16, 0x3a414c, 0x262b33);
    this.scene.add(grid);
    this.figure = new THREE.Group();
    this.scene.add(this.figure);
    this.bones = CONNECTIONS.map(([a, b]) => {
      const side = LEFT.has(a) && LEFT.has(b) ? 'left' : RIGHT.has(a) && RIGHT.has(b) ? 'right' : 'centre';
      const mesh = new THREE.Mesh(
        new THREE.CylinderGeometry(BONE_RADIUS_M, BONE_RADIUS_M, 1, 8),
        new THREE.MeshStandardMaterial({ color: COLORS[side], roughness: 0.6 }),
      );
      mesh.visible = false;
      this.figure.add(mesh);
      return { a, b, mesh };
    });
    const jointGeometry = new THREE.SphereGeometry(JOINT_RADIUS_M, 12, 8);
    const jointMaterial = new THREE.MeshStandardMaterial({ color: COLORS.joint, roughness: 0.5 });
    this.jointMeshes = Array.from({ length: 33 }, () => {
      const mesh = new THREE.Mesh(jointGeometry, jointMaterial);
      mesh.visible = false;
      this.figure.add(mesh);
      return mesh;
    });
    this.listenForOrbit();
    new ResizeObserver(() => this.requestDraw()).observe(container);
    this.requestDraw();
  }

  get available() { return Boolean(this.renderer); }

  // Drag orbits around the person; the wheel zooms. Pointer capture keeps a drag going
  // when the pointer leaves the canvas.
  listenForOrbit() {
    let last = null;
    this.canvas.addEventListener('pointerdown', (event) => {
      last = { x: event.clientX, y: event.clientY };
      this.canvas.setPointerCapture(event.pointerId);
      event.stopPropagation();
    });
    this.canvas.addEventListener('pointermove', (event) => {
      if (!last) return;
      this.orbit.azimuth -= (event.clientX - last.x) * 0.01;
      this.orbit.elevation = Math.min(1.45, Math.max(-0.3, this.orbit.elevation + (event.clientY - last.y) * 0.01));
      last = { x: event.clientX, y: event.clientY };
      this.requestDraw();
    });
    const end = () => { last = null; };
    this.canvas.addEventListener('pointerup', end);
    this.canvas.addEventListener('pointercancel', end);
    this.canvas.addEventListener('click', (event) => event.stopPropagation());
    this.canvas.addEventListener('wheel', (event) => {
      event.preventDefault();
      this.orbit.distance = Math.min(12, Math.max(1.2, this.orbit.distance * Math.exp(event.deltaY * 0.001)));
      this.requestDraw();
    }, { passive: false });
  }

  // A new `pose3d` (null or [] clears the figure).
  update(pose3d) {
    if (!this.renderer) return;
    const joints = Array.isArray(pose3d) && pose3d.length === 33 ? usableJoints(pose3d) : null;
    if (!joints || joints.filter(Boolean).length < 4) {
      for (const mesh of this.jointMeshes) mesh.visible = false;
      for (const bone of this.bones) bone.mesh.visible = false;
      this.joints = 0;
      this.requestDraw();
      return;
    }
    const upright = this.upright(joints);
    const points = joints.map((p) => (p ? new THREE.Vector3(p[0], upright ? p[1] : -p[1], upright ? p[2] : -p[2]) : null));
    this.place(points);
    this.joints = 0;
    points.forEach((point, index) => {
      const mesh = this.jointMeshes[index];
      mesh.visible = Boolean(point);
      if (point) { mesh.position.copy(point); this.joints += 1; }
    });
    for (const { a, b, mesh } of this.bones) {
      const p = points[a];
      const q = points[b];
      mesh.visible = Boolean(p && q);
      if (!mesh.visible) continue;
      const direction = new THREE.Vector3().subVectors(q, p);
      const length = direction.length();
      mesh.visible = length > 1e-4;
      if (!mesh.visible) continue;
      mesh.position.copy(p).addScaledVector(direction, 0.5);
      mesh.scale.set(1, length, 1);
      mesh.quaternion.setFromUnitVectors(UP, direction.divideScalar(length));
    }
    this.frames += 1;
    this.requestDraw();
  }

  // True when the pose's Y already points up (the head above the ankles).
  upright(joints) {
    const head = mean([joints[0], joints[11], joints[12]]);
    const feet = mean([joints[27], joints[28], joints[29], joints[30]]);
    if (!head || !feet) return this.lastUpright !== false;
    this.lastUpright = head[1] >= feet[1];
    return this.lastUpright;
  }

  // Moves the figure so its hips are above the grid's centre and its feet on the floor.
  place(points) {
    const hips = mean([points[23], points[24]].map((p) => p && [p.x, p.y, p.z]));
    const lowest = Math.min(...points.filter(Boolean).map((p) => p.y));
    const smooth = (old, value) => (old === null ? value : 0.8 * old + 0.2 * value);
    if (hips) {
      this.centre = this.centre ? [smooth(this.centre[0], hips[0]), smooth(this.centre[1], hips[2])] : [hips[0], hips[2]];
    }
    this.floor = smooth(this.floor, lowest);
    const [x, z] = this.centre || [0, 0];
    this.figure.position.set(-x, -this.floor, -z);
  }

  requestDraw() {
    if (!this.renderer || this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    const { clientWidth: width, clientHeight: height } = this.container;
    if (!width || !height) return;
    const size = this.renderer.getSize(new THREE.Vector2());
    if (size.x !== width || size.y !== height) {
      this.renderer.setSize(width, height, false);
      this.camera.aspect = width / height;
      this.camera.updateProjectionMatrix();
    }
    const { azimuth, elevation, distance } = this.orbit;
    const target = new THREE.Vector3(0, 0.9, 0); // about a person's middle
    this.camera.position.set(
      target.x + distance * Math.cos(elevation) * Math.sin(azimuth),
      target.y + distance * Math.sin(elevation),
      target.z + distance * Math.cos(elevation) * Math.cos(azimuth),
    );
    this.camera.lookAt(target);
    this.renderer.render(this.scene, this.camera);
  }

  close() {
    if (!this.renderer) return;
    this.renderer.dispose();
    this.canvas.remove();
  }
}
