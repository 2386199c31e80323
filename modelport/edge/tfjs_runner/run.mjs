// Runs a TF.js graph model for modelport (formats/tfjs.py): real TF.js in Node, WebAssembly backend
// by default, so the numbers checked are the ones a browser computes.
//
//   node run.mjs MODEL_DIR [--backend wasm|cpu]   one JSON request per stdin line, one answer per stdout line
//   node run.mjs --list-ops                       the TensorFlow op names TF.js's graph executor implements
//                                                 (written to ../tfjs_ops.json when TF.js is upgraded)
//
// A request is {"inputs": {name: {"dtype", "shape", "data": base64 of little-endian values}},
// "outputs": [names]}; the answer {"outputs": {name: {...same...}}} or {"error": message}. The first
// line written is {"ready": true, ...} once the model is loaded, or {"error": ...} when it cannot be.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import {fileURLToPath} from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function answer(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

async function listOps() {
  const folder = path.join(here, 'node_modules/@tensorflow/tfjs-converter/dist/operations/op_list');
  const names = new Set();
  // tfdf.js lists TensorFlow Decision Forests ops, which run only with the separate tfjs-tfdf package.
  for (const file of fs.readdirSync(folder).filter(f => f.endsWith('.js') && f !== 'tfdf.js').sort()) {
    const {json} = await import(path.join(folder, file));
    for (const op of json) names.add(op.tfOpName);
  }
  const {version} = JSON.parse(fs.readFileSync(
      path.join(here, 'node_modules/@tensorflow/tfjs-converter/package.json'), 'utf8'));
  answer({version, ops: [...names].sort()});
}

// The weights of a graph model: every group's shards in order, concatenated, as a browser fetches
// them. Shard paths are plain file names in the model's folder; anything else is refused.
function folderHandler(dir) {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      const specs = [];
      const buffers = [];
      for (const group of json.weightsManifest || []) {
        for (const shard of group.paths) {
          if (shard !== path.basename(shard) || shard.startsWith('.')) {
            throw new Error(`weight shard ${JSON.stringify(shard)} is not a file name in the model's folder`);
          }
          buffers.push(fs.readFileSync(path.join(dir, shard)));
        }
        specs.push(...group.weights);
      }
      const data = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology, format: json.format, generatedBy: json.generatedBy,
        convertedBy: json.convertedBy, signature: json.signature, userDefinedMetadata: json.userDefinedMetadata,
        modelInitializer: json.modelInitializer, weightSpecs: specs,
        weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      };
    },
  };
}

const ARRAYS = {float32: Float32Array, int32: Int32Array, bool: Uint8Array};

function toTensor(tf, name, spec) {
  const Array_ = ARRAYS[spec.dtype];
  if (!Array_) throw new Error(`input ${name}: TF.js takes float32, int32 or bool, not ${spec.dtype}`);
  const bytes = Buffer.from(spec.data, 'base64');
  const values = new Array_(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return tf.tensor(values, spec.shape, spec.dtype);
}

async function fromTensor(tensor) {
  const values = await tensor.data();
  const typed = tensor.dtype === 'bool' ? Uint8Array.from(values) : values;
  const bytes = Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength);
  return {dtype: tensor.dtype, shape: tensor.shape, data: bytes.toString('base64')};
}

async function serve(dir, backend) {
  // Quiet TF.js's console hints (they would mix with the answers on stdout).
  console.log = console.warn = console.info = (...args) => process.stderr.write(args.join(' ') + '\n');
  const tf = await import('@tensorflow/tfjs');
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend))) throw new Error(`the TF.js ${backend} backend did not start`);
  await tf.ready();
  const model = await tf.loadGraphModel(folderHandler(dir));
  answer({ready: true, backend: tf.getBackend(), tfjs: tf.version.tfjs});
  const lines = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
  for await (const line of lines) {
    if (!line.trim()) continue;
    let feeds = {};
    try {
      const request = JSON.parse(line);
      for (const [name, spec] of Object.entries(request.inputs)) feeds[name] = toTensor(tf, name, spec);
      let results = await model.executeAsync(feeds, request.outputs);
      if (!Array.isArray(results)) results = [results];
      const outputs = {};
      for (let i = 0; i < results.length; i++) outputs[request.outputs[i]] = await fromTensor(results[i]);
      tf.dispose(results);
      answer({outputs});
    } catch (error) {
      const failed = await firstFailingNode(model, feeds);
      const where = failed ? ` (first failing node ${JSON.stringify(failed.name)}, op ${failed.op})` : '';
      answer({error: String(error && error.message || error) + where, ...(failed || {})});
    } finally {
      tf.dispose(Object.values(feeds));
    }
  }
}

// The node where a failed run breaks: every node of the graph, in the graph's order, run on its own
// (with what it needs) until one fails. Errors from inside WebAssembly kernels ("Aborted()") name
// no op themselves; this names it. Runs only after a failure.
async function firstFailingNode(model, feeds) {
  const nodes = (model.artifacts && model.artifacts.modelTopology && model.artifacts.modelTopology.node) || [];
  const inputs = new Set(Object.keys(feeds).map(name => name.split(':')[0]));
  for (const node of nodes) {
    if (node.op === 'Placeholder' || node.op === 'Const' || inputs.has(node.name)) continue;
    try {
      const result = await model.executeAsync(feeds, node.name);
      const tensors = Array.isArray(result) ? result : [result];
      for (const tensor of tensors) await tensor.data();
      for (const tensor of tensors) tensor.dispose();
    } catch (error) {
      return {name: node.name, op: node.op};
    }
  }
  return null;
}

const args = process.argv.slice(2);
if (args[0] === '--list-ops') {
  await listOps();
} else {
  const dir = args[0];
  const at = args.indexOf('--backend');
  const backend = at >= 0 ? args[at + 1] : 'wasm';
  try {
    await serve(dir, backend);
  } catch (error) {
    answer({error: String(error && error.message || error)});
    process.exitCode = 1;
  }
}
