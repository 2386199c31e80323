"""Small Hugging Face architectures built from configs (random weights, nothing downloaded).

``ARCHITECTURES`` lists, per family, the factory and the modelport arguments that describe its inputs
(``--input-shape`` with named dynamic dims, ``--dim`` where a dim needs a size of its own); the zoo
benchmark converts them all and the suite one per kind.
"""
from __future__ import annotations

import torch

TEXT = ("--input-shape", "input_ids:1,seq:int64")
SEQ2SEQ = ("--input-shape", "input_ids:1,seq:int64", "--input-shape", "decoder_input_ids:1,target:int64")
SMALL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
DECODER = {**SMALL, "vocab_size": 100, "max_position_embeddings": 64, "num_key_value_heads": 2}


def _build(config_name: str, model_name: str, **config):
    import transformers
    torch.manual_seed(0)
    model = getattr(transformers, model_name)(getattr(transformers, config_name)(**config))
    return model.eval()


def bert():
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    return BertModel(config).eval()


def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=64)).eval()


def _vision(config_name, model_name, **config):
    return _build(config_name, model_name, image_size=32, num_channels=3, **config)


# name -> (factory, modelport arguments)
ARCHITECTURES: dict[str, tuple] = {
    "bert": (bert, TEXT),
    "roberta": (lambda: _build("RobertaConfig", "RobertaModel", vocab_size=100, max_position_embeddings=70, **SMALL), TEXT),
    "distilbert": (lambda: _build("DistilBertConfig", "DistilBertModel", vocab_size=100, dim=32, n_layers=2, n_heads=4,
                                  hidden_dim=64, max_position_embeddings=64), TEXT),
    "albert": (lambda: _build("AlbertConfig", "AlbertModel", vocab_size=100, embedding_size=16,
                              max_position_embeddings=64, **SMALL), TEXT),
    "electra": (lambda: _build("ElectraConfig", "ElectraModel", vocab_size=100, embedding_size=16,
                               max_position_embeddings=64, **SMALL), TEXT),
    "deberta_v2": (lambda: _build("DebertaV2Config", "DebertaV2Model", vocab_size=100, max_position_embeddings=64,
                                  **SMALL), TEXT),
    "mpnet": (lambda: _build("MPNetConfig", "MPNetModel", vocab_size=100, max_position_embeddings=70, **SMALL), TEXT),
    "modernbert": (lambda: _build("ModernBertConfig", "ModernBertModel", vocab_size=100, max_position_embeddings=64,
                                  pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2,
                                  **SMALL), TEXT),
    "gpt2": (gpt2, TEXT),
    "gpt_neox": (lambda: _build("GPTNeoXConfig", "GPTNeoXForCausalLM", vocab_size=100, max_position_embeddings=64,
                                **SMALL), TEXT),
    "llama": (lambda: _build("LlamaConfig", "LlamaForCausalLM", **DECODER), TEXT),
    "mistral": (lambda: _build("MistralConfig", "MistralForCausalLM", **DECODER), TEXT),
    "qwen2": (lambda: _build("Qwen2Config", "Qwen2ForCausalLM", **DECODER), TEXT),
    "phi3": (lambda: _build("Phi3Config", "Phi3ForCausalLM", pad_token_id=0, **DECODER), TEXT),
    "gemma": (lambda: _build("GemmaConfig", "GemmaForCausalLM", head_dim=8, **DECODER), TEXT),
    "opt": (lambda: _build("OPTConfig", "OPTForCausalLM", vocab_size=100, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, ffn_dim=64, word_embed_proj_dim=32, max_position_embeddings=64), TEXT),
    "bloom": (lambda: _build("BloomConfig", "BloomForCausalLM", vocab_size=100, hidden_size=32, n_layer=2, n_head=4),
              TEXT),
    "t5": (lambda: _build("T5Config", "T5Model", vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                          num_heads=4, decoder_start_token_id=0), SEQ2SEQ),
    "bart": (lambda: _build("BartConfig", "BartModel", vocab_size=100, d_model=32, encoder_layers=2, decoder_layers=2,
                            encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                            decoder_ffn_dim=64, max_position_embeddings=64), SEQ2SEQ),
    "vit": (lambda: _vision("ViTConfig", "ViTForImageClassification", patch_size=8, num_labels=10, **SMALL),
            ("--input-shape", "pixel_values:1,3,32,32")),
    "swin": (lambda: _vision("SwinConfig", "SwinForImageClassification", patch_size=2, embed_dim=16, depths=[1, 1],
                             num_heads=[2, 4], window_size=4, num_labels=10),
             ("--input-shape", "pixel_values:1,3,32,32")),
    "convnext": (lambda: _build("ConvNextConfig", "ConvNextForImageClassification", num_channels=3, num_stages=2, hidden_sizes=[16, 32],
                                depths=[1, 1], num_labels=10), ("--input-shape", "pixel_values:1,3,32,32")),
    "beit": (lambda: _vision("BeitConfig", "BeitForImageClassification", patch_size=8, num_labels=10, **SMALL),
             ("--input-shape", "pixel_values:1,3,32,32")),
    "dinov2": (lambda: _vision("Dinov2Config", "Dinov2Model", patch_size=8, **SMALL),
               ("--input-shape", "pixel_values:1,3,32,32")),
    "segformer": (lambda: _build("SegformerConfig", "SegformerForSemanticSegmentation", num_channels=3,
                                 hidden_sizes=[16, 32], depths=[1, 1], num_encoder_blocks=2, sr_ratios=[2, 1],
                                 num_attention_heads=[1, 2], patch_sizes=[7, 3], strides=[4, 2], mlp_ratios=[2, 2],
                                 decoder_hidden_size=32, num_labels=4), ("--input-shape", "pixel_values:1,3,32,32")),
    "wav2vec2": (lambda: _build("Wav2Vec2Config", "Wav2Vec2Model", conv_dim=(16, 16, 16), conv_stride=(5, 2, 2),
                                conv_kernel=(10, 3, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                                **SMALL), ("--input-shape", "input_values:1,samples", "--dim", "samples=3200")),
    "whisper": (lambda: _build("WhisperConfig", "WhisperModel", vocab_size=100, num_mel_bins=16, d_model=32,
                               encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                               decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
                               max_source_positions=32, max_target_positions=32, decoder_start_token_id=1,
                               pad_token_id=0),
                ("--input-shape", "input_features:1,16,64", "--input-shape", "decoder_input_ids:1,target:int64")),
}
SUITE = ("bert", "llama", "bart", "vit", "wav2vec2")


def __getattr__(attribute: str):
    # tests.zoo_hf:llama as a modelport factory spec
    if attribute in ARCHITECTURES:
        return ARCHITECTURES[attribute][0]
    raise AttributeError(attribute)
