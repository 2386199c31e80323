// Greedy decoding in transformers.js, the way a web or Node app runs a decoder folder:
// AutoModelForCausalLM.from_pretrained on the local folder (no remote models), then
// model.generate({ do_sample: false }) from each prompt's token ids.
//
//   node run.mjs FOLDER < {"prompts": [[ids...], ...], "max_new_tokens": N}
//   -> {"version": "...", "load_seconds": s, "results": [{"tokens": [...], "seconds": s}, ...]}
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { AutoModelForCausalLM, env, Tensor } from '@huggingface/transformers';

const folder = path.resolve(process.argv[2]);
const request = JSON.parse(readFileSync(0, 'utf8'));
env.allowRemoteModels = false;
env.localModelPath = path.dirname(folder) + path.sep;

const loadStart = performance.now();
const model = await AutoModelForCausalLM.from_pretrained(path.basename(folder), { dtype: 'fp32', device: 'cpu' });
const loadSeconds = (performance.now() - loadStart) / 1000;

const ids = (values) => new Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, values.length]);
const results = [];
for (const prompt of request.prompts) {
  const start = performance.now();
  // eos_token_id null: exactly max_new_tokens, as the reference is asked for.
  const output = await model.generate({
    input_ids: ids(prompt), attention_mask: ids(prompt.map(() => 1)),
    max_new_tokens: request.max_new_tokens, do_sample: false, num_beams: 1, eos_token_id: null,
  });
  const seconds = (performance.now() - start) / 1000;
  results.push({ tokens: Array.from(output.data, Number).slice(prompt.length), seconds });
}
await model.dispose();
const { version } = JSON.parse(readFileSync(new URL('./node_modules/@huggingface/transformers/package.json', import.meta.url)));
process.stdout.write(JSON.stringify({ version, load_seconds: loadSeconds, results }) + '\n');
