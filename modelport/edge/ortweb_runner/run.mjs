// Runs an ONNX model for modelport (formats/ort_web.py) in ONNX Runtime Web's WebAssembly build, in
// Node: the same wasm a browser page runs, so the numbers checked are the ones the page computes.
//
//   node run.mjs MODEL.onnx [--threads N]   one JSON request per stdin line, one answer per stdout line
//
// A request is {"inputs": {name: {"dtype", "shape", "data": base64 of little-endian values}},
// "outputs": [names]}; the answer {"outputs": {name: {...same...}}} or {"error": message}. The first
// line written is {"ready": true, "ort": version} once the model is loaded, or {"error": ...}.
import readline from 'node:readline';

function answer(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

// ORT's tensor types and the typed arrays that carry them (int64 as BigInt64Array, bool as bytes).
const ARRAYS = {
  float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array,
  int8: Int8Array, int16: Int16Array, uint16: Uint16Array, float16: Uint16Array, bool: Uint8Array,
};

function toTensor(ort, name, spec) {
  const Array_ = ARRAYS[spec.dtype];
  if (!Array_) throw new Error(`input ${name}: ONNX Runtime Web takes no ${spec.dtype} tensors`);
  const bytes = Buffer.from(spec.data, 'base64');
  const copy = new Uint8Array(bytes).buffer;  // aligned for the typed array
  return new ort.Tensor(spec.dtype, new Array_(copy), spec.shape);
}

function fromTensor(tensor) {
  const values = tensor.data;
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return {dtype: tensor.type, shape: tensor.dims, data: bytes.toString('base64')};
}

async function serve(model, threads) {
  console.log = console.warn = console.info = (...args) => process.stderr.write(args.join(' ') + '\n');
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = 'error';
  const session = await ort.InferenceSession.create(model, {executionProviders: ['wasm'], graphOptimizationLevel: 'all'});
  answer({ready: true, ort: ort.env.versions.web, inputs: session.inputNames, outputs: session.outputNames});
  const lines = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
  for await (const line of lines) {
    if (!line.trim()) continue;
    try {
      const request = JSON.parse(line);
      const feeds = {};
      for (const [name, spec] of Object.entries(request.inputs)) feeds[name] = toTensor(ort, name, spec);
      const results = await session.run(feeds, request.outputs);
      const outputs = {};
      for (const name of request.outputs) outputs[name] = fromTensor(results[name]);
      answer({outputs});
    } catch (error) {
      answer({error: String(error && error.message || error)});
    }
  }
}

const args = process.argv.slice(2);
const threadsAt = args.indexOf('--threads');
const threads = threadsAt >= 0 ? Number(args[threadsAt + 1]) : 1;
serve(args[0], threads).catch(error => {
  answer({error: String(error && error.message || error)});
  process.exitCode = 1;
});
