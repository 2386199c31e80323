// Classifies an image with the bundle `modelport edge web` wrote, in the browser, with ONNX Runtime
// Web's WebAssembly backend. manifest.json says what the model takes: its image input's name, size
// and layout, the normalization to apply to pixels, and which output labels.txt annotates.
//
// URL parameter ?image=URL classifies one image at load time. When done, the page sets
// document.body.dataset.state to "done" (or "error") and leaves the result in window.modelportResult.
import * as ort from './ort.wasm.min.mjs';

const WASM = 'ort-wasm-simd-threaded.wasm';
const params = new URLSearchParams(location.search);
const statusLine = document.getElementById('status');

function show(text, error = false) {
  statusLine.textContent = text;
  statusLine.className = error ? 'error' : '';
}

// A server that answers a missing file with its index page (a single-page-app fallback), or a page
// copied without the .wasm, makes ORT fail with "expected magic word 00 61 73 6d"; say what is wrong.
async function checkWasm() {
  const response = await fetch(WASM, {cache: 'no-store'});
  const type = response.headers.get('content-type') || 'no Content-Type';
  const head = new Uint8Array(await response.arrayBuffer(), 0, 4);
  const isWasm = head.length === 4 && head[0] === 0x00 && head[1] === 0x61 && head[2] === 0x73 && head[3] === 0x6d;
  if (!response.ok || !isWasm) {
    throw new Error(`${WASM} did not come back as WebAssembly (HTTP ${response.status}, ${type}): serve the ` +
                    `bundle's files as they are, beside this page, .wasm as application/wasm ` +
                    `(examples/ort-web/serve.py does)`);
  }
  if (!type.startsWith('application/wasm')) {
    console.warn(`${WASM} is served as ${type}; browsers compile WebAssembly fastest from application/wasm`);
  }
}

async function loadBundle() {
  await checkWasm();
  ort.env.wasm.wasmPaths = new URL('./', location.href).href;
  // Threads need cross-origin isolation (COOP/COEP headers): without it, SharedArrayBuffer is off.
  const threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.numThreads = threads;
  document.getElementById('threads').textContent = self.crossOriginIsolated
    ? `${threads} WebAssembly threads (the page is cross-origin isolated)`
    : '1 WebAssembly thread: serve the page with Cross-Origin-Opener-Policy: same-origin and ' +
      'Cross-Origin-Embedder-Policy: require-corp for more';
  const manifest = await (await fetch('manifest.json')).json();
  const entry = manifest.models[0];
  const input = entry.inputs.find(i => i.layout === 'NCHW' || i.layout === 'NHWC');
  if (!input) throw new Error('this page classifies images: the model has no image input');
  const output = entry.outputs.find(o => o.labels) || entry.outputs[0];
  const labels = output.labels
    ? (await (await fetch(output.labels)).text()).replace(/\n$/, '').split('\n')
    : null;
  const session = await ort.InferenceSession.create('model.onnx', {executionProviders: ['wasm']});
  return {session, input, output, labels, threads};
}

// Pixels as the model takes them: drawn at the input's height and width, RGB (or grey), in the
// input's layout, then (x - mean) / std per channel when the bundle records a normalization.
function preprocess(image, input) {
  const nchw = input.layout === 'NCHW';
  const [height, width, channels] = nchw ? [input.shape[2], input.shape[3], input.shape[1]]
                                         : [input.shape[1], input.shape[2], input.shape[3]];
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d', {willReadFrequently: true});
  context.drawImage(image, 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  const norm = input.normalization || {mean: [0], std: [1]};
  const pick = (values, c) => values[values.length === 1 ? 0 : c];
  const data = new Float32Array(height * width * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const pixel = (y * width + x) * 4;
      for (let c = 0; c < channels; c++) {
        const raw = channels === 1 ? (rgba[pixel] + rgba[pixel + 1] + rgba[pixel + 2]) / 3 : rgba[pixel + c];
        const value = (raw - pick(norm.mean, c)) / pick(norm.std, c);
        data[nchw ? c * height * width + y * width + x : (y * width + x) * channels + c] = value;
      }
    }
  }
  return new ort.Tensor('float32', data, nchw ? [1, channels, height, width] : [1, height, width, channels]);
}

async function classify(bundle, image) {
  const {session, input, output, labels} = bundle;
  const results = await session.run({[input.name]: preprocess(image, input)});
  const scores = Array.from(results[output.name].data);
  const ranked = scores.map((score, index) => ({index, label: labels ? labels[index] : String(index), score}))
    .sort((a, b) => b.score - a.score);
  return {scores, top: ranked.slice(0, 5)};
}

function render(result) {
  const body = document.querySelector('#result tbody');
  body.replaceChildren(...result.top.map(({label, score}) => {
    const row = document.createElement('tr');
    row.innerHTML = '<td></td><td class="score"></td>';
    row.cells[0].textContent = label;
    row.cells[1].textContent = score.toFixed(4);
    return row;
  }));
  document.getElementById('result').hidden = false;
}

async function classifyUrl(bundle, url) {
  const image = document.getElementById('picked');
  image.src = url;
  await image.decode();
  const result = await classify(bundle, image);
  render(result);
  window.modelportResult = {...result, threads: bundle.threads, isolated: self.crossOriginIsolated};
  show(`Top class: ${result.top[0].label} (ONNX Runtime Web, WebAssembly)`);
  document.body.dataset.state = 'done';
}

function fail(error) {
  const message = String(error && error.message || error);
  show(message, true);
  window.modelportResult = {error: message};
  document.body.dataset.state = 'error';
}

try {
  const bundle = await loadBundle();
  show('Model loaded (ONNX Runtime Web, WebAssembly). Pick an image.');
  const picker = document.getElementById('file');
  picker.disabled = false;
  picker.addEventListener('change', () => {
    if (picker.files[0]) classifyUrl(bundle, URL.createObjectURL(picker.files[0])).catch(fail);
  });
  if (params.get('image')) await classifyUrl(bundle, params.get('image'));
} catch (error) {
  fail(error);
}
