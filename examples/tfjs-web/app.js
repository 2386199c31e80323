// Classifies an image with a bundle written by `modelport edge tfjs`, in the browser.
// The bundle's manifest.json says what the model takes: its input's name and size, the
// normalization to apply to pixels, and which output the labels.txt annotate.
//
// URL parameters: ?model=FOLDER/ (default model/) and ?image=URL to classify one at load time.
// When done, the page sets document.body.dataset.state to "done" (or "error") and leaves the
// result in window.modelportResult, for tests and for anyone scripting the page.
'use strict';

const params = new URLSearchParams(location.search);
const base = (params.get('model') || 'model/').replace(/\/?$/, '/');
const statusLine = document.getElementById('status');

function show(text, error = false) {
  statusLine.textContent = text;
  statusLine.className = error ? 'error' : '';
}

async function loadBundle() {
  tf.wasm.setWasmPaths(new URL('lib/', location.href).href);
  const backend = (await tf.setBackend('wasm')) ? 'wasm' : tf.getBackend();
  await tf.ready();
  const manifest = await (await fetch(base + 'manifest.json')).json();
  const entry = manifest.models[0];
  const input = entry.inputs.find(i => i.layout === 'NHWC');
  if (!input) throw new Error('this page classifies images: the model has no channels-last image input');
  const output = entry.outputs.find(o => o.labels) || entry.outputs[0];
  const labels = output.labels
    ? (await (await fetch(base + output.labels)).text()).replace(/\n$/, '').split('\n')
    : null;
  const model = await tf.loadGraphModel(base + 'model.json');
  return {model, input, output, labels, backend};
}

// Pixels as the model takes them: the input's height and width (resized only when the image
// differs), its channel count, then (x - mean) / std when the bundle records a normalization.
function preprocess(image, input) {
  const [, height, width, channels] = input.shape;
  return tf.tidy(() => {
    let x = tf.browser.fromPixels(image, channels).toFloat();
    if (x.shape[0] !== height || x.shape[1] !== width) x = tf.image.resizeBilinear(x, [height, width]);
    if (input.normalization) {
      x = x.sub(tf.tensor1d(input.normalization.mean)).div(tf.tensor1d(input.normalization.std));
    }
    return x.expandDims(0);
  });
}

async function classify(bundle, image) {
  const {model, input, output, labels} = bundle;
  const batch = preprocess(image, input);
  const result = await model.executeAsync({[input.name]: batch}, output.name);
  const scores = Array.from(await result.data());
  tf.dispose([batch, result]);
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
  window.modelportResult = {...result, backend: bundle.backend};
  show(`Top class: ${result.top[0].label} (${bundle.backend} backend)`);
  document.body.dataset.state = 'done';
}

(async () => {
  try {
    const bundle = await loadBundle();
    show(`Model loaded (${bundle.backend} backend). Pick an image.`);
    const picker = document.getElementById('file');
    picker.disabled = false;
    picker.addEventListener('change', () => {
      if (picker.files[0]) classifyUrl(bundle, URL.createObjectURL(picker.files[0])).catch(fail);
    });
    if (params.get('image')) await classifyUrl(bundle, params.get('image'));
  } catch (error) {
    fail(error);
  }
})();

function fail(error) {
  show(String(error && error.message || error), true);
  window.modelportResult = {error: String(error && error.message || error)};
  document.body.dataset.state = 'error';
}
