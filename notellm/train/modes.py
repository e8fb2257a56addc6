"""Which parameters train: `full`, `lora` (peft adapters) or `top_n` (the last N decoder layers).

In every mode the projection `proj` and the scale `tau` train (when GCL is on; with GCL off they get no gradient,
so they are frozen: the embedding is then the zero-shot state after SFT, through the initial projection).
"""

from __future__ import annotations

from torch import nn

from notellm.train.config import TrainArgs


def _decoder_layers(causal_lm: nn.Module) -> tuple[nn.ModuleList, nn.Module | None]:
    decoder = causal_lm.get_decoder()
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(f"mode top_n: {type(decoder).__name__} has no `layers` ModuleList; use mode full or lora")
    return layers, getattr(decoder, "norm", None)


def apply_mode(model, args: TrainArgs) -> None:
    """Freeze / wrap `model` (a NoteLLM) in place according to `args.mode`."""
    if args.mode == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    elif args.mode == "lora":
        from peft import LoraConfig, get_peft_model

        for p in model.backbone.parameters():
            p.requires_grad_(False)
        present = {name.rsplit(".", 1)[-1] for name, _ in model.backbone.named_modules()}
        targets = [t for t in args.lora_target_modules if t in present]
        if not targets:
            raise ValueError(
                f"train.lora_target_modules {args.lora_target_modules} match no module of the backbone "
                f"(it has e.g. {sorted(present)[:20]})"
            )
        extra = {}
        if args.lora_layers:
            layers, _ = _decoder_layers(model.causal_lm)
            if args.lora_layers > len(layers):
                raise ValueError(f"train.lora_layers={args.lora_layers} but the backbone has {len(layers)} layers")
            extra["layers_to_transform"] = list(range(len(layers) - args.lora_layers, len(layers)))
        config = LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=targets,
            bias="none",
            **extra,
        )
        model.backbone = get_peft_model(model.backbone, config)
    elif args.mode == "top_n":
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        layers, norm = _decoder_layers(model.causal_lm)
        if args.top_n_layers > len(layers):
            raise ValueError(f"train.top_n_layers={args.top_n_layers} but the backbone has {len(layers)} layers")
        for layer in layers[len(layers) - args.top_n_layers :]:
            layer.requires_grad_(True)
        if norm is not None:
            norm.requires_grad_(True)
    for p in (model.proj.weight, model.tau):
        p.requires_grad_(args.gcl)
    if args.gcl and args.alpha == 0:
        # the LM head gets no gradient without CSFT; an untied head would be an unused parameter under DDP
        head = model.causal_lm.get_output_embeddings()
        inputs = model.causal_lm.get_input_embeddings()
        if head is not None and head.weight.data_ptr() != inputs.weight.data_ptr():
            head.requires_grad_(False)


def frozen_bottom_layers(model, args: TrainArgs) -> int:
    """How many bottom decoder layers (and the embeddings below them) get no gradient in this mode: the layers
    whose outputs can be cached (`top_n`: all but the top N; `lora` with `lora_layers`: all below the adapters)."""
    if args.mode == "top_n":
        n = args.top_n_layers
    elif args.mode == "lora" and args.lora_layers:
        n = args.lora_layers
    else:
        return 0
    layers, _ = _decoder_layers(model.causal_lm)
    return len(layers) - n


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts, tied weights counted once."""
    trainable = total = 0
    for p in model.parameters():  # parameters() already de-duplicates shared tensors
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total
