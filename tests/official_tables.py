"""The official PyTorch state_dict tables of the example networks, written out from the reference.

Source: ../shared/reference/pose-networks.md (sections 3.1 to 3.8), which lists every key
and shape of the official implementations. These tables are independent of poseir's code.
"""

from __future__ import annotations


def _batch_norm(prefix: str, width: int) -> dict:
    """A BatchNorm's five state_dict entries."""
    table = {f"{prefix}.{name}": (width,) for name in ("weight", "bias", "running_mean", "running_var")}
    table[f"{prefix}.num_batches_tracked"] = ()
    return table


def videopose3d(channels: int = 1024, widths=(3, 3, 3, 3, 3), joints_in: int = 17, joints_out: int = 17) -> dict:
    """facebookresearch/VideoPose3D TemporalModel: 56 entries for the 243-frame model."""
    table = {"expand_conv.weight": (channels, joints_in * 2, widths[0])}
    table.update(_batch_norm("expand_bn", channels))
    for block, width in enumerate(widths[1:]):
        table[f"layers_conv.{2 * block}.weight"] = (channels, channels, width)
        table[f"layers_conv.{2 * block + 1}.weight"] = (channels, channels, 1)
        table.update(_batch_norm(f"layers_bn.{2 * block}", channels))
        table.update(_batch_norm(f"layers_bn.{2 * block + 1}", channels))
    table["shrink.weight"] = (joints_out * 3, channels, 1)
    table["shrink.bias"] = (joints_out * 3,)
    return table


def simplebaseline(size: int = 1024, stages: int = 2) -> dict:
    """weigq/3d_pose_baseline_pytorch LinearModel: 37 entries."""
    table = {"w1.weight": (size, 32), "w1.bias": (size,)}
    table.update(_batch_norm("batch_norm1", size))
    for stage in range(stages):
        prefix = f"linear_stages.{stage}"
        for index in (1, 2):
            table[f"{prefix}.w{index}.weight"] = (size, size)
            table[f"{prefix}.w{index}.bias"] = (size,)
        table.update(_batch_norm(f"{prefix}.batch_norm1", size))
        table.update(_batch_norm(f"{prefix}.batch_norm2", size))
    table["w2.weight"] = (48, size)
    table["w2.bias"] = (48,)
    return table


def _transformer_block(prefix: str, width: int, hidden: int) -> dict:
    """A timm-style pre-norm block."""
    return {
        f"{prefix}.norm1.weight": (width,), f"{prefix}.norm1.bias": (width,),
        f"{prefix}.attn.qkv.weight": (3 * width, width), f"{prefix}.attn.qkv.bias": (3 * width,),
        f"{prefix}.attn.proj.weight": (width, width), f"{prefix}.attn.proj.bias": (width,),
        f"{prefix}.norm2.weight": (width,), f"{prefix}.norm2.bias": (width,),
        f"{prefix}.mlp.fc1.weight": (hidden, width), f"{prefix}.mlp.fc1.bias": (hidden,),
        f"{prefix}.mlp.fc2.weight": (width, hidden), f"{prefix}.mlp.fc2.bias": (width,),
    }


def poseformer(frames: int = 81, joints: int = 17, ratio: int = 32, depth: int = 4) -> dict:
    """zczcwh/PoseFormer PoseTransformer: 110 entries for the 81-frame model."""
    width = ratio * joints
    table = {
        "Spatial_pos_embed": (1, joints, ratio),
        "Temporal_pos_embed": (1, frames, width),
        "Spatial_patch_to_embedding.weight": (ratio, 2),
        "Spatial_patch_to_embedding.bias": (ratio,),
    }
    for block in range(depth):
        table.update(_transformer_block(f"Spatial_blocks.{block}", ratio, 2 * ratio))
    for block in range(depth):
        table.update(_transformer_block(f"blocks.{block}", width, 2 * width))
    table.update({
        "Spatial_norm.weight": (ratio,), "Spatial_norm.bias": (ratio,),
        "Temporal_norm.weight": (width,), "Temporal_norm.bias": (width,),
        "weighted_mean.weight": (1, frames, 1), "weighted_mean.bias": (1,),
        "head.0.weight": (width,), "head.0.bias": (width,),
        "head.1.weight": (joints * 3, width), "head.1.bias": (joints * 3,),
    })
    return table


def mixste(frames: int = 243, joints: int = 17, width: int = 512, depth: int = 8) -> dict:
    """JinluZhang1126/MixSTE MixSTE2: 204 entries for the 243-frame model (spatial = temporal width)."""
    table = {
        "Spatial_pos_embed": (1, joints, width),
        "Temporal_pos_embed": (1, frames, width),
        "Spatial_patch_to_embedding.weight": (width, 2),
        "Spatial_patch_to_embedding.bias": (width,),
    }
    for block in range(depth):
        table.update(_transformer_block(f"STEblocks.{block}", width, 2 * width))
        table.update(_transformer_block(f"TTEblocks.{block}", width, 2 * width))
    table.update({
        "Spatial_norm.weight": (width,), "Spatial_norm.bias": (width,),
        "Temporal_norm.weight": (width,), "Temporal_norm.bias": (width,),
        "head.0.weight": (width,), "head.0.bias": (width,),
        "head.1.weight": (3, width), "head.1.bias": (3,),
    })
    return table


def motionbert(width: int = 512, hidden: int = 1024, depth: int = 5, maxlen: int = 243, joints: int = 17,
               rep: int = 512) -> dict:
    """Walter0807/MotionBERT DSTformer (dim_in 3, dim_out 3, dim_rep 512, att_fuse): 260 entries."""
    table = {
        "temp_embed": (1, maxlen, 1, width),
        "pos_embed": (1, joints, width),
        "joints_embed.weight": (width, 3),
        "joints_embed.bias": (width,),
    }
    for stage in ("st", "ts"):
        for block in range(depth):
            prefix = f"blocks_{stage}.{block}"
            for stream in ("s", "t"):
                for norm in ("norm1", "norm2"):
                    table[f"{prefix}.{norm}_{stream}.weight"] = (width,)
                    table[f"{prefix}.{norm}_{stream}.bias"] = (width,)
                table[f"{prefix}.attn_{stream}.qkv.weight"] = (3 * width, width)
                table[f"{prefix}.attn_{stream}.qkv.bias"] = (3 * width,)
                table[f"{prefix}.attn_{stream}.proj.weight"] = (width, width)
                table[f"{prefix}.attn_{stream}.proj.bias"] = (width,)
                table[f"{prefix}.mlp_{stream}.fc1.weight"] = (hidden, width)
                table[f"{prefix}.mlp_{stream}.fc1.bias"] = (hidden,)
                table[f"{prefix}.mlp_{stream}.fc2.weight"] = (width, hidden)
                table[f"{prefix}.mlp_{stream}.fc2.bias"] = (width,)
    table.update({
        "norm.weight": (width,), "norm.bias": (width,),
        "pre_logits.fc.weight": (rep, width), "pre_logits.fc.bias": (rep,),
        "head.weight": (3, rep), "head.bias": (3,),
    })
    for block in range(depth):
        table[f"ts_attn.{block}.weight"] = (2, 2 * width)
        table[f"ts_attn.{block}.bias"] = (2,)
    return table


def _sem_graph_conv(prefix: str, width_in: int, width_out: int, nonzeros: int = 46) -> dict:
    """A SemGraphConv: W (2, in, out), e (1, adjacency non-zeros), bias (out,)."""
    return {f"{prefix}.W": (2, width_in, width_out), f"{prefix}.e": (1, nonzeros), f"{prefix}.bias": (width_out,)}


def semgcn(hid_dim: int = 128, num_layers: int = 4) -> dict:
    """garyzhao/SemGCN SemGCN without non-local blocks (section 3.7): 75 entries."""
    table = _sem_graph_conv("gconv_input.0.gconv", 2, hid_dim)
    table.update(_batch_norm("gconv_input.0.bn", hid_dim))
    for layer in range(num_layers):
        for conv in ("gconv1", "gconv2"):
            prefix = f"gconv_layers.{layer}.{conv}"
            table.update(_sem_graph_conv(f"{prefix}.gconv", hid_dim, hid_dim))
            table.update(_batch_norm(f"{prefix}.bn", hid_dim))
    table.update(_sem_graph_conv("gconv_output", hid_dim, 3))
    return table


def _layer_norm(prefix: str, width: int) -> dict:
    """A LayerNorm's weight and bias."""
    return {f"{prefix}.weight": (width,), f"{prefix}.bias": (width,)}


def _linear(prefix: str, width_in: int, width_out: int) -> dict:
    """A Linear(in -> out) with bias: weight (out, in), bias (out,)."""
    return {f"{prefix}.weight": (width_out, width_in), f"{prefix}.bias": (width_out,)}


def _hypothesis_mlp(prefix: str, channel: int, hidden: int) -> dict:
    """The MLP over the three concatenated hypotheses of an SHR or CHI block, with its LayerNorm."""
    table = _layer_norm(f"{prefix}.norm2", 3 * channel)
    table.update(_linear(f"{prefix}.mlp.fc1", 3 * channel, hidden))
    table.update(_linear(f"{prefix}.mlp.fc2", hidden, 3 * channel))
    return table


def mhformer(frames: int = 351, joints: int = 17, channel: int = 512, hidden: int = 1024, layers: int = 3) -> dict:
    """Vegetebird/MHFormer Model (section 3.6): 273 entries for the 351-frame model.

    The MHG encoders have width `frames` and 34 tokens (2 * joints), 4 blocks with MLP 2 * frames; the
    hypothesis transformer has `layers - 1` SHR blocks and one CHI block. Up to 27 frames each
    embedding is Conv1d, BatchNorm1d, ReLU, Dropout (an nn.Sequential); above, a bare Conv1d.
    """
    table = {}
    for k in (1, 2, 3):
        table.update(_layer_norm(f"norm_{k}", frames))
    for k in (1, 2, 3):
        prefix = f"Transformer_encoder_{k}"
        table[f"{prefix}.pos_embed"] = (1, 2 * joints, frames)
        for block in range(4):
            table.update(_transformer_block(f"{prefix}.blocks.{block}", frames, 2 * frames))
        table.update(_layer_norm(f"{prefix}.norm", frames))
    for k in (1, 2, 3):
        if frames > 27:
            table[f"embedding_{k}.weight"] = (channel, 2 * joints, 1)
            table[f"embedding_{k}.bias"] = (channel,)
        else:
            table[f"embedding_{k}.0.weight"] = (channel, 2 * joints, 1)
            table[f"embedding_{k}.0.bias"] = (channel,)
            table.update(_batch_norm(f"embedding_{k}.1", channel))
    prefix = "Transformer_hypothesis"
    for k in (1, 2, 3):
        table[f"{prefix}.pos_embed_{k}"] = (1, frames, channel)
    for block in range(layers - 1):
        shr = f"{prefix}.SHR_blocks.{block}"
        for k in (1, 2, 3):
            table.update(_layer_norm(f"{shr}.norm1_{k}", channel))
            table.update(_linear(f"{shr}.attn_{k}.qkv", channel, 3 * channel))
            table.update(_linear(f"{shr}.attn_{k}.proj", channel, channel))
        table.update(_hypothesis_mlp(shr, channel, hidden))
    chi = f"{prefix}.CHI_blocks.0"
    for row in (1, 2, 3):
        for column in (1, 2, 3):
            table.update(_layer_norm(f"{chi}.norm3_{row}{column}", channel))
    for k in (1, 2, 3):
        for projection in ("linear_q", "linear_k", "linear_v", "proj"):
            table.update(_linear(f"{chi}.attn_{k}.{projection}", channel, channel))
    table.update(_hypothesis_mlp(chi, channel, hidden))
    table.update(_layer_norm(f"{prefix}.norm", 3 * channel))
    table.update(_batch_norm("regression.0", 3 * channel))
    table["regression.1.weight"] = (3 * joints, 3 * channel, 1)
    table["regression.1.bias"] = (3 * joints,)
    return table


def _non_local(prefix: str, width: int) -> dict:
    """A _GraphNonLocal's GraphNonLocal (inter channels width / 2, sub-sampled g and phi, BN in W)."""
    inter = width // 2
    table = {}
    for conv in ("g.0", "theta", "phi.0"):
        table[f"{prefix}.nonlocal.{conv}.weight"] = (inter, width, 1)
        table[f"{prefix}.nonlocal.{conv}.bias"] = (inter,)
    table[f"{prefix}.nonlocal.concat_project.0.weight"] = (1, 2 * inter, 1, 1)
    table[f"{prefix}.nonlocal.W.0.weight"] = (width, inter, 1)
    table[f"{prefix}.nonlocal.W.0.bias"] = (width,)
    table.update(_batch_norm(f"{prefix}.nonlocal.W.1", width))
    return table


def semgcn_nonlocal(hid_dim: int = 128, num_layers: int = 4) -> dict:
    """garyzhao/SemGCN SemGCN with nodes_group (section 3.7): 145 entries.

    A non-local block follows the input layer (gconv_input.1) and each residual layer, so the residual
    layers are gconv_layers.{0, 2, ...} and the blocks gconv_layers.{1, 3, ...}.
    """
    table = _sem_graph_conv("gconv_input.0.gconv", 2, hid_dim)
    table.update(_batch_norm("gconv_input.0.bn", hid_dim))
    table.update(_non_local("gconv_input.1", hid_dim))
    for layer in range(num_layers):
        for conv in ("gconv1", "gconv2"):
            prefix = f"gconv_layers.{2 * layer}.{conv}"
            table.update(_sem_graph_conv(f"{prefix}.gconv", hid_dim, hid_dim))
            table.update(_batch_norm(f"{prefix}.bn", hid_dim))
        table.update(_non_local(f"gconv_layers.{2 * layer + 1}", hid_dim))
    table.update(_sem_graph_conv("gconv_output", hid_dim, 3))
    return table


def integral(joints: int = 18, depth: int = 64, blocks=(3, 4, 6, 3), width: int = 64, filters: int = 256) -> dict:
    """JimmySuen/integral-human-pose ResPoseNet (ResNet-50, 3 deconvs x 256, 18 joints, depth 64): 338 entries.

    The backbone is torchvision's ResNet-50 minus avgpool and fc; its Bottleneck holds conv1 (1x1),
    conv2 (3x3), conv3 (1x1, expansion 4), bn1..bn3 and, in each stage's first block, downsample.0
    (1x1 conv) and downsample.1 (BN). The head is one nn.Sequential `features`: per deconv layer a
    ConvTranspose2d (in, out, 4, 4) without bias, a BN and a parameterless ReLU; then a 1x1 conv.
    """
    table = {"backbone.conv1.weight": (width, 3, 7, 7)}
    table.update(_batch_norm("backbone.bn1", width))
    inplanes = width
    for stage, count in enumerate(blocks):
        planes = width * 2 ** stage
        for block in range(count):
            prefix = f"backbone.layer{stage + 1}.{block}"
            table[f"{prefix}.conv1.weight"] = (planes, inplanes, 1, 1)
            table.update(_batch_norm(f"{prefix}.bn1", planes))
            table[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            table.update(_batch_norm(f"{prefix}.bn2", planes))
            table[f"{prefix}.conv3.weight"] = (planes * 4, planes, 1, 1)
            table.update(_batch_norm(f"{prefix}.bn3", planes * 4))
            if block == 0:
                table[f"{prefix}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                table.update(_batch_norm(f"{prefix}.downsample.1", planes * 4))
            inplanes = planes * 4
    channels = inplanes
    for layer in range(3):
        table[f"head.features.{3 * layer}.weight"] = (channels, filters, 4, 4)
        table.update(_batch_norm(f"head.features.{3 * layer + 1}", filters))
        channels = filters
    table["head.features.9.weight"] = (joints * depth, filters, 1, 1)
    table["head.features.9.bias"] = (joints * depth,)
    return table


def _annotated_layer_norm(prefix: str, width: int) -> dict:
    """The Annotated Transformer's LayerNorm: a_2 and b_2."""
    return {f"{prefix}.a_2": (width,), f"{prefix}.b_2": (width,)}


def _pstmo_encoder_layer(prefix: str, width: int, hidden: int, stride: int | None) -> dict:
    """One encoder layer: four attention projections, the feed-forward (linear, or strided convolutions), two norms."""
    table = {}
    for index in range(4):
        table.update(_linear(f"{prefix}.self_attn.linears.{index}", width, width))
    if stride is None:
        table.update(_linear(f"{prefix}.feed_forward.w_1", width, hidden))
        table.update(_linear(f"{prefix}.feed_forward.w_2", hidden, width))
    else:
        table[f"{prefix}.feed_forward.w_1.weight"] = (hidden, width, 1)
        table[f"{prefix}.feed_forward.w_1.bias"] = (hidden,)
        table[f"{prefix}.feed_forward.w_2.weight"] = (width, hidden, 3)
        table[f"{prefix}.feed_forward.w_2.bias"] = (width,)
    for index in range(2):
        table.update(_annotated_layer_norm(f"{prefix}.sublayer.{index}.norm", width))
    return table


def pstmo(frames: int = 243, layers: int = 3, channel: int = 256, hidden: int = 512, strides=(3, 3, 3, 3, 3),
          joints_in: int = 17, joints_out: int = 17) -> dict:
    """paTRICK-swk/P-STMO `Model` (model/stmo.py), from the official code: 173 entries for PSTMOS (3 layers, 243 frames).

    FCBlock registers fc_1, bn_1 and fc_2 before its block list (wrapped in a ModuleList last); each
    encoder's `norm` is in the state_dict though never applied; the strided encoder's three positional
    embeddings are its own parameters, so they come before its layers.
    """
    linear_size = 2 * channel
    table = {"encoder.fc_1.weight": (linear_size, 2 * joints_in, 1), "encoder.fc_1.bias": (linear_size,)}
    table.update(_batch_norm("encoder.bn_1", linear_size))
    table["encoder.fc_2.weight"] = (channel, linear_size, 1)
    table["encoder.fc_2.bias"] = (channel,)
    for index in (1, 2):
        table[f"encoder.layers.0.w{index}.weight"] = (linear_size, linear_size, 1)
        table[f"encoder.layers.0.w{index}.bias"] = (linear_size,)
        table.update(_batch_norm(f"encoder.layers.0.batch_norm{index}", linear_size))
    table["Transformer.pos_embedding"] = (1, frames, channel)
    for layer in range(layers):
        table.update(_pstmo_encoder_layer(f"Transformer.model.layers.{layer}", channel, hidden, None))
    table.update(_annotated_layer_norm("Transformer.model.norm", channel))
    for index in (1, 2, 3):
        table[f"Transformer_reduce.model.pos_embedding_{index}"] = (1, frames, channel)
    for layer, stride in enumerate(strides):
        table.update(_pstmo_encoder_layer(f"Transformer_reduce.model.layers.{layer}", channel, hidden, stride))
    table.update(_annotated_layer_norm("Transformer_reduce.model.norm", channel))
    for head in ("fcn", "fcn_1"):
        table.update(_batch_norm(f"{head}.0", channel))
        table[f"{head}.1.weight"] = (3 * joints_out, channel, 1)
        table[f"{head}.1.bias"] = (3 * joints_out,)
    return table


# Trainable parameter counts the reference quotes (buffers excluded).
PARAMETER_COUNTS = {"videopose3d": 16_952_371, "simplebaseline": 4_291_632, "poseformer": 9_602_885,
                    "mixste": 33_783_811, "motionbert": 42_466_317}
ENTRY_COUNTS = {"videopose3d": 56, "simplebaseline": 37, "poseformer": 110, "mixste": 204, "motionbert": 260}

# SemGCN (section 3.7): its table leaves out num_batches_tracked, but its 75 entries count it (9 BatchNorms).
PARAMETER_COUNTS["semgcn"] = 267_343
ENTRY_COUNTS["semgcn"] = 75

# Integral regression (section 3.8): 338 entries, counting the 56 BatchNorms' num_batches_tracked.
PARAMETER_COUNTS["integral"] = 34_291_392
ENTRY_COUNTS["integral"] = 338

# MHFormer (section 3.6), 351 frames: 273 entries with regression.0's num_batches_tracked. The
# reference also gives the trainable counts at other clip lengths (27 frames: BN embeddings).
PARAMETER_COUNTS["mhformer"] = 31_516_125
ENTRY_COUNTS["mhformer"] = 273
MHFORMER_PARAMETERS_BY_FRAMES = {243: 25_165_077, 81: 19_837_545, 27: 19_184_517}

# SemGCN with non-local blocks (section 3.7): 145 entries, counting 14 BatchNorms' num_batches_tracked.
PARAMETER_COUNTS["semgcn_nonlocal"] = 434_703
ENTRY_COUNTS["semgcn_nonlocal"] = 145

# P-STMO (PSTMOS: 3 vanilla layers, 243 frames, strides [3, 3, 3, 3, 3]), counted from the table above
# (the official code under torch gives the same 173 entries and 6,482,278 trainable parameters).
PARAMETER_COUNTS["pstmo"] = 6_482_278
ENTRY_COUNTS["pstmo"] = 173
