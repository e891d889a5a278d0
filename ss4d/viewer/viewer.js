// ss4d viewer: plays an embedded 4D Gaussian sequence with a WebGL2 splat renderer written for ss4d.
// Same model as ss4d/render/rasterize.py: OpenCV pinhole camera (x right, y down, z forward), world -> camera
// view matrix, EWA-projected covariances plus a 0.1 px^2 filter, alpha = min(0.99, o exp(-d^T S^-1 d / 2))
// dropped below 1/255, composited in depth order over a white background. Test hook: window.ss4dViewer.
(function () {
  "use strict";
  const ALPHA_MIN = 1 / 255, ALPHA_MAX = 0.99, FILTER_2D = 0.1, NEAR = 0.01;
  const ROW = 1024; // splats per texture row (4 RGBA32F texels each)
  const meta = JSON.parse(document.getElementById("ss4d-meta").textContent);
  const blob = (function (s) {
    const bin = atob(s.replace(/\s+/g, ""));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  })(document.getElementById("ss4d-data").textContent);
  const numFrames = meta.frames.length;
  const $ = (id) => document.getElementById(id);

  // ---- decoding (mirror of ss4d/viewer/pack.py decode_frame) -------------------------------------------
  function writeSplat(out, i, x, y, z, op, cov, r, g, b) {
    const k = i * 16;
    out[k] = x; out[k + 1] = y; out[k + 2] = z; out[k + 3] = op;
    out[k + 4] = cov[0]; out[k + 5] = cov[1]; out[k + 6] = cov[2]; out[k + 7] = cov[3];
    out[k + 8] = cov[4]; out[k + 9] = cov[5];
    out[k + 12] = r; out[k + 13] = g; out[k + 14] = b;
  }
  function covariance(w, x, y, z, sx, sy, sz, cov) {
    // R of the unit quaternion (w, x, y, z), M = R diag(s), cov = M M^T (upper triangle: 00 01 02 11 12 22)
    const r00 = 1 - 2 * (y * y + z * z), r01 = 2 * (x * y - w * z), r02 = 2 * (x * z + w * y);
    const r10 = 2 * (x * y + w * z), r11 = 1 - 2 * (x * x + z * z), r12 = 2 * (y * z - w * x);
    const r20 = 2 * (x * z - w * y), r21 = 2 * (y * z + w * x), r22 = 1 - 2 * (x * x + y * y);
    const m00 = r00 * sx, m01 = r01 * sy, m02 = r02 * sz, m10 = r10 * sx, m11 = r11 * sy, m12 = r12 * sz;
    const m20 = r20 * sx, m21 = r21 * sy, m22 = r22 * sz;
    cov[0] = m00 * m00 + m01 * m01 + m02 * m02; cov[1] = m00 * m10 + m01 * m11 + m02 * m12;
    cov[2] = m00 * m20 + m01 * m21 + m02 * m22; cov[3] = m10 * m10 + m11 * m11 + m12 * m12;
    cov[4] = m10 * m20 + m11 * m21 + m12 * m22; cov[5] = m20 * m20 + m21 * m21 + m22 * m22;
  }
  function decodeGaussians(f) {
    const n = f.n, o = f.offset;
    const pos = new Uint16Array(blob.buffer, o, 3 * n);
    const sc = new Uint8Array(blob.buffer, o + 6 * n, 3 * n);
    const rot = new Uint8Array(blob.buffer, o + 9 * n, 4 * n);
    const rgba = new Uint8Array(blob.buffer, o + 13 * n, 4 * n);
    const out = new Float32Array(Math.max(1, Math.ceil(n / ROW)) * ROW * 16);
    const cov = new Float64Array(6);
    const lerp = (u, lo, hi, levels) => lo + (u / levels) * (hi - lo);
    for (let i = 0; i < n; i++) {
      const p = [0, 1, 2].map((a) => lerp(pos[3 * i + a], f.pos_min[a], f.pos_max[a], 65535));
      const s = [0, 1, 2].map((a) => Math.exp(lerp(sc[3 * i + a], f.log_scale_min[a], f.log_scale_max[a], 255)));
      let qw = rot[4 * i] / 127.5 - 1, qx = rot[4 * i + 1] / 127.5 - 1;
      let qy = rot[4 * i + 2] / 127.5 - 1, qz = rot[4 * i + 3] / 127.5 - 1;
      const qn = Math.max(Math.hypot(qw, qx, qy, qz), 1e-12);
      qw /= qn; qx /= qn; qy /= qn; qz /= qn;
      covariance(qw, qx, qy, qz, s[0], s[1], s[2], cov);
      writeSplat(out, i, p[0], p[1], p[2], rgba[4 * i + 3] / 255, cov,
        rgba[4 * i] / 255, rgba[4 * i + 1] / 255, rgba[4 * i + 2] / 255);
    }
    return { n, data: out };
  }
  function decodeVoxels(v) {
    // ss4d/render/preview.py render_voxels: isotropic splats of std 0.6 / res, opacity 0.9, shaded by height
    const n = v.n, res = meta.resolution, idx = new Uint8Array(blob.buffer, v.offset, 3 * n);
    const out = new Float32Array(Math.max(1, Math.ceil(n / ROW)) * ROW * 16);
    const s = 0.6 / res, cov = [s * s, 0, 0, s * s, 0, s * s];
    for (let i = 0; i < n; i++) {
      const x = (idx[3 * i] + 0.5) / res - 0.5, y = (idx[3 * i + 1] + 0.5) / res - 0.5;
      const z = (idx[3 * i + 2] + 0.5) / res - 0.5, h = Math.min(Math.max(z + 0.5, 0), 1);
      writeSplat(out, i, x, y, z, 0.9, cov, 0.35 + 0.5 * h, 0.45 + 0.3 * h, 0.8 - 0.4 * h);
    }
    return { n, data: out };
  }

  // ---- WebGL2 ------------------------------------------------------------------------------------------
  const canvas = $("ss4d-canvas");
  const gl = canvas.getContext("webgl2", { antialias: false, alpha: false, preserveDrawingBuffer: true });
  if (!gl) {
    $("ss4d-status").textContent = "This viewer needs WebGL2 (enable hardware acceleration or use a newer browser).";
    console.error("ss4d viewer: WebGL2 is not available");
    return;
  }
  const VS = `#version 300 es
precision highp float; precision highp int;
uniform highp sampler2D u_data; uniform mat4 u_view; uniform vec4 u_intr; uniform vec2 u_size;
in vec2 a_corner; in uint a_index;
out vec2 v_offset; out vec3 v_conic; out vec4 v_color;
void main() {
  int i = int(a_index);
  ivec2 base = ivec2((i % ${ROW}) * 4, i / ${ROW});
  vec4 t0 = texelFetch(u_data, base, 0), t1 = texelFetch(u_data, base + ivec2(1, 0), 0);
  vec4 t2 = texelFetch(u_data, base + ivec2(2, 0), 0), t3 = texelFetch(u_data, base + ivec2(3, 0), 0);
  vec4 p = u_view * vec4(t0.xyz, 1.0);
  float op = t0.w;
  if (p.z <= ${NEAR} || op <= ${ALPHA_MIN}) { gl_Position = vec4(0.0, 0.0, 2.0, 1.0); return; }
  mat3 S = mat3(t1.x, t1.y, t1.z, t1.y, t1.w, t2.x, t1.z, t2.x, t2.y);
  mat3 W = mat3(u_view);
  float z = p.z;
  vec3 j0 = vec3(u_intr.x / z, 0.0, -u_intr.x * p.x / (z * z));
  vec3 j1 = vec3(0.0, u_intr.y / z, -u_intr.y * p.y / (z * z));
  vec3 r0 = j0 * W, r1 = j1 * W; // rows of J W
  float a = dot(r0, S * r0) + ${FILTER_2D}, b = dot(r0, S * r1), c = dot(r1, S * r1) + ${FILTER_2D};
  float det = a * c - b * b;
  v_conic = vec3(c / det, -b / det, a / det);
  vec2 mean2d = vec2(u_intr.x * p.x / z + u_intr.z, u_intr.y * p.y / z + u_intr.w);
  float lam = 0.5 * (a + c) + sqrt(max(0.25 * (a - c) * (a - c) + b * b, 0.0));
  float radius = sqrt(lam * 2.0 * log(max(op / ${ALPHA_MIN}, 1.0)));
  v_offset = a_corner * radius;
  vec2 pix = mean2d + v_offset;
  gl_Position = vec4(pix.x / u_size.x * 2.0 - 1.0, 1.0 - pix.y / u_size.y * 2.0, 0.0, 1.0);
  v_color = vec4(t3.rgb, op);
}`;
  const FS = `#version 300 es
precision highp float;
in vec2 v_offset; in vec3 v_conic; in vec4 v_color; out vec4 frag;
void main() {
  vec2 d = v_offset;
  float power = -0.5 * (v_conic.x * d.x * d.x + v_conic.z * d.y * d.y) - v_conic.y * d.x * d.y;
  if (power > 0.0) discard;
  float alpha = min(${ALPHA_MAX}, v_color.a * exp(power));
  if (alpha < ${ALPHA_MIN}) discard;
  frag = vec4(v_color.rgb * alpha, alpha);
}`;
  function shader(type, src) {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error("shader: " + gl.getShaderInfoLog(s));
    return s;
  }
  const prog = gl.createProgram();
  gl.attachShader(prog, shader(gl.VERTEX_SHADER, VS));
  gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, FS));
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error("program: " + gl.getProgramInfoLog(prog));
  const loc = (n) => gl.getUniformLocation(prog, n);
  const U = { data: loc("u_data"), view: loc("u_view"), intr: loc("u_intr"), size: loc("u_size") };
  const vao = gl.createVertexArray();
  gl.bindVertexArray(vao);
  const cornerBuf = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, cornerBuf);
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
  const aCorner = gl.getAttribLocation(prog, "a_corner");
  gl.enableVertexAttribArray(aCorner);
  gl.vertexAttribPointer(aCorner, 2, gl.FLOAT, false, 0, 0);
  const indexBuf = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, indexBuf);
  const aIndex = gl.getAttribLocation(prog, "a_index");
  gl.enableVertexAttribArray(aIndex);
  gl.vertexAttribIPointer(aIndex, 1, gl.UNSIGNED_INT, 0, 0);
  gl.vertexAttribDivisor(aIndex, 1);
  const tex = gl.createTexture();
  gl.bindTexture(gl.TEXTURE_2D, tex);
  for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.NEAREST);

  // ---- state -------------------------------------------------------------------------------------------
  const hasVoxels = Array.isArray(meta.voxels) && meta.voxels.length === numFrames;
  const state = { frame: 0, mode: "gaussians", playing: false, fixedSize: null, renders: 0,
    orbit: { radius: 2.0, azimuth: -45, elevation: 20, fov: 40 }, explicit: null };
  let current = null; // {key, n, data, order}
  const cache = new Map(), CACHE_BYTES = 512 * 2 ** 20; // decoded frames, oldest dropped first
  let cachedBytes = 0;
  function frameData(mode, i) {
    const key = mode + ":" + i;
    if (!cache.has(key)) {
      const d = mode === "voxels" ? decodeVoxels(meta.voxels[i]) : decodeGaussians(meta.frames[i]);
      while (cache.size && cachedBytes + d.data.byteLength > CACHE_BYTES) {
        const [k, old] = cache.entries().next().value;
        cache.delete(k);
        cachedBytes -= old.data.byteLength;
      }
      cache.set(key, d);
      cachedBytes += d.data.byteLength;
    }
    return { key, ...cache.get(key) };
  }
  function lookAt(eye) { // world -> camera (rows: right, down, forward), ss4d/render/camera.py look_at, up +z
    const f = [-eye[0], -eye[1], -eye[2]], fl = Math.hypot(...f);
    const fw = f.map((v) => v / fl);
    let r = [fw[1] * 1 - fw[2] * 0, fw[2] * 0 - fw[0] * 1, fw[0] * 0 - fw[1] * 0]; // forward x up(0,0,1)
    const rl = Math.hypot(...r) || 1; r = r.map((v) => v / rl);
    const d = [fw[1] * r[2] - fw[2] * r[1], fw[2] * r[0] - fw[0] * r[2], fw[0] * r[1] - fw[1] * r[0]];
    const rows = [r, d, fw];
    const V = [];
    for (const row of rows) V.push(row[0], row[1], row[2], -(row[0] * eye[0] + row[1] * eye[1] + row[2] * eye[2]));
    V.push(0, 0, 0, 1);
    return V; // row-major 4x4
  }
  function camera(w, h) {
    if (state.explicit) return state.explicit;
    const o = state.orbit, az = o.azimuth * Math.PI / 180, el = o.elevation * Math.PI / 180;
    const eye = [o.radius * Math.cos(el) * Math.cos(az), o.radius * Math.cos(el) * Math.sin(az), o.radius * Math.sin(el)];
    // fov across the shorter side (ss4d's Camera.from_fov takes the width: the same on square canvases)
    const f = 0.5 * Math.min(w, h) / Math.tan(o.fov * Math.PI / 360);
    return { viewmat: lookAt(eye), fx: f, fy: f, cx: w / 2, cy: h / 2 };
  }
  function backToFront(d, V) {
    const n = d.n, z = new Float32Array(n), order = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const k = 16 * i;
      z[i] = V[8] * d.data[k] + V[9] * d.data[k + 1] + V[10] * d.data[k + 2] + V[11];
      order[i] = i;
    }
    if (n <= 65536) return order.sort((a, b) => z[b] - z[a] || a - b);
    // large frames: one counting-sort pass on 16-bit depth (far to near), as splat viewers do
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) { lo = Math.min(lo, z[i]); hi = Math.max(hi, z[i]); }
    const scale = 65535 / Math.max(hi - lo, 1e-12), counts = new Uint32Array(65536), key = new Uint16Array(n);
    for (let i = 0; i < n; i++) { key[i] = 65535 - Math.round((z[i] - lo) * scale); counts[key[i]]++; }
    for (let k = 1; k < 65536; k++) counts[k] += counts[k - 1];
    for (let i = n - 1; i >= 0; i--) order[--counts[key[i]]] = i;
    return order;
  }

  function render() {
    const w = canvas.width, h = canvas.height;
    const data = frameData(state.mode, state.frame);
    if (!current || current.key !== data.key) {
      gl.bindTexture(gl.TEXTURE_2D, tex);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA32F, ROW * 4, data.data.length / (ROW * 16), 0, gl.RGBA, gl.FLOAT, data.data);
      current = data;
    }
    const cam = camera(w, h), V = cam.viewmat;
    const order = backToFront(current, V);
    gl.bindBuffer(gl.ARRAY_BUFFER, indexBuf);
    gl.bufferData(gl.ARRAY_BUFFER, order, gl.DYNAMIC_DRAW);
    gl.viewport(0, 0, w, h);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.useProgram(prog);
    gl.bindVertexArray(vao);
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.uniform1i(U.data, 0);
    gl.uniformMatrix4fv(U.view, false, [0, 1, 2, 3].flatMap((c) => [V[c], V[4 + c], V[8 + c], V[12 + c]]));
    gl.uniform4f(U.intr, cam.fx, cam.fy, cam.cx, cam.cy);
    gl.uniform2f(U.size, w, h);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    gl.drawArraysInstanced(gl.TRIANGLE_STRIP, 0, 4, current.n);
    state.renders++;
    updateUi();
  }

  // ---- UI ----------------------------------------------------------------------------------------------
  const scrub = $("ss4d-scrub"), playBtn = $("ss4d-play"), label = $("ss4d-frame"), img = $("ss4d-input");
  const modeSel = $("ss4d-mode");
  scrub.max = String(numFrames - 1);
  if (!hasVoxels) modeSel.querySelector('option[value="voxels"]').disabled = true;
  if (!meta.images || !meta.images.length) $("ss4d-input-panel").classList.add("empty");
  function updateUi() {
    scrub.value = String(state.frame);
    label.textContent = `frame ${state.frame + 1} / ${numFrames} · ${current ? current.n : 0} ${state.mode}`;
    playBtn.textContent = state.playing ? "Pause" : "Play";
    if (meta.images && meta.images[state.frame]) img.src = meta.images[state.frame];
  }
  function resize() {
    if (state.fixedSize) return;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr)), h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  }
  function setFrame(i) {
    if (!Number.isInteger(i) || i < 0 || i >= numFrames) throw new RangeError(`frame must be in 0..${numFrames - 1}`);
    state.frame = i;
    render();
  }
  let clock = 0, last = null;
  function tick(now) {
    if (!state.playing) { last = null; return; }
    if (last !== null) clock += (now - last) / 1000 * meta.fps;
    last = now;
    const f = Math.floor(clock) % numFrames;
    if (f !== state.frame) setFrame(f);
    requestAnimationFrame(tick);
  }
  function play() { if (!state.playing) { state.playing = true; clock = state.frame; requestAnimationFrame(tick); updateUi(); } }
  function pause() { state.playing = false; updateUi(); }
  playBtn.addEventListener("click", () => (state.playing ? pause() : play()));
  scrub.addEventListener("input", () => { pause(); setFrame(Number(scrub.value)); });
  modeSel.addEventListener("change", () => { state.mode = modeSel.value; render(); });
  $("ss4d-reset").addEventListener("click", () => { state.explicit = null; state.orbit = { radius: 2.0, azimuth: -45, elevation: 20, fov: 40 }; render(); });
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY }; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    state.explicit = null;
    state.orbit.azimuth -= (e.clientX - drag.x) * 0.4;
    state.orbit.elevation = Math.min(89, Math.max(-89, state.orbit.elevation + (e.clientY - drag.y) * 0.4));
    drag = { x: e.clientX, y: e.clientY };
    render();
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    state.explicit = null;
    state.orbit.radius = Math.min(20, Math.max(0.3, state.orbit.radius * Math.exp(e.deltaY * 0.001)));
    render();
  }, { passive: false });
  window.addEventListener("keydown", (e) => {
    if (e.key === " ") { e.preventDefault(); state.playing ? pause() : play(); }
    else if (e.key === "ArrowRight") { pause(); setFrame((state.frame + 1) % numFrames); }
    else if (e.key === "ArrowLeft") { pause(); setFrame((state.frame + numFrames - 1) % numFrames); }
  });
  new ResizeObserver(() => { resize(); render(); }).observe(canvas);

  // ---- test hook ---------------------------------------------------------------------------------------
  let resolveReady;
  const ready = new Promise((r) => { resolveReady = r; });
  window.ss4dViewer = {
    ready, numFrames, fps: meta.fps,
    get frame() { return state.frame; },
    get renders() { return state.renders; },
    setFrame, play, pause,
    setMode(m) {
      if (m !== "gaussians" && m !== "voxels") throw new RangeError("mode: 'gaussians' or 'voxels'");
      if (m === "voxels" && !hasVoxels) throw new RangeError("this page holds no voxels");
      state.mode = m; modeSel.value = m; render();
    },
    // a fixed drawing-buffer size in CSS pixels, or no arguments for the page layout again
    setSize(w, h) {
      state.fixedSize = w ? [w, h] : null;
      canvas.style.flex = w ? "none" : "";
      canvas.style.width = w ? w + "px" : "";
      canvas.style.height = w ? h + "px" : "";
      if (w) { canvas.width = w; canvas.height = h; } else resize();
      render();
    },
    snapshot() { return canvas.toDataURL("image/png"); }, // the canvas as rendered, pixel for pixel
    // {radius, azimuth, elevation, fov} (degrees, ss4d's orbit_view) or {viewmat: 16 row-major, fx, fy, cx, cy} (pixels)
    setCamera(c) {
      if (c.viewmat) { if (c.viewmat.length !== 16) throw new RangeError("viewmat: 16 numbers, row-major"); state.explicit = { ...c }; }
      else { state.explicit = null; Object.assign(state.orbit, c); }
      render();
    },
  };
  resize();
  render();
  resolveReady(true);
  if (numFrames > 1) play();
})();
