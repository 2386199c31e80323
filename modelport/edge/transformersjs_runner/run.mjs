// Greedy decoding in transformers.js, the way a web or Node app runs a decoder folder:
// AutoModelForCausalLM (AutoModelForSeq2SeqLM for an encoder-decoder) .from_pretrained on the local
// folder (no remote models), then model.generate({ do_sample: false }) from each prompt's token ids.
// The folder's generation_config.json is overridden to plain greedy decoding (no repetition
// penalty, no forced tokens, no end-of-sequence stop): the tokens the check compares.
//
//   node run.mjs FOLDER < {"prompts": [[ids...], ...], "max_new_tokens": N, "seq2seq": false}
//   -> {"version": "...", "load_seconds": s, "results": [{"tokens": [...], "seconds": s}, ...]}
import path from 'node:path';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { AutoModelForCausalLM, AutoModelForSeq2SeqLM, env, Tensor } from '@huggingface/transformers';

const folder = path.resolve(process.argv[2]);
const request = JSON.parse(readFileSync(0, 'utf8'));
env.allowRemoteModels = false;
env.localModelPath = path.dirname(folder) + path.sep;

const loadStart = performance.now();
const Auto = request.seq2seq ? AutoModelForSeq2SeqLM : AutoModelForCausalLM;
// Weights beyond ONNX's 2 GB protobuf limit sit in model.onnx_data files beside the graphs.
const external = existsSync(path.join(folder, 'onnx')) &&
  readdirSync(path.join(folder, 'onnx')).some((name) => name.endsWith('.onnx_data'));
const model = await Auto.from_pretrained(path.basename(folder),
  { dtype: 'fp32', device: 'cpu', use_external_data_format: external });
const loadSeconds = (performance.now() - loadStart) / 1000;

const ids = (values) => new Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, values.length]);
const results = [];
for (const prompt of request.prompts) {
  const start = performance.now();
  const output = await model.generate({
    input_ids: ids(prompt), attention_mask: ids(prompt.map(() => 1)),
    max_new_tokens: request.max_new_tokens, do_sample: false, num_beams: 1, eos_token_id: null,
    repetition_penalty: 1.0, no_repeat_ngram_size: 0, forced_bos_token_id: null, forced_eos_token_id: null,
    min_length: 0, min_new_tokens: null, suppress_tokens: null, begin_suppress_tokens: null,
  });
  const seconds = (performance.now() - start) / 1000;
  // A decoder's output starts with the prompt, an encoder-decoder's with its decoder start token.
  const skip = request.seq2seq ? 1 : prompt.length;
  results.push({ tokens: Array.from(output.data, Number).slice(skip), seconds });
}
await model.dispose();
const { version } = JSON.parse(readFileSync(new URL('./node_modules/@huggingface/transformers/package.json', import.meta.url)));
process.stdout.write(JSON.stringify({ version, load_seconds: loadSeconds, results }) + '\n');
