"""Example outputs against independent numpy restatements of the official forward passes.

The reference functions below are written from ../shared/reference/pose-networks.md, by hand,
with loops where that is clearer; they share no code with poseir's ops. They read the same
weights dict (state_dict keys), so a wrong key, transpose, reshape or axis order shows up as
a numeric difference.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from poseir.backends.numpy_interpreter import run_graph
from poseir.compiler import build
from poseir.weights.init import initialize

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def randomized_weights(graph, seed):
    """Initialized weights with non-trivial batch-norm statistics and affine parameters."""
    weights = initialize(graph.parameters, seed)
    rng = np.random.default_rng(seed + 100)
    for name, value in weights.items():
        if name.endswith(("running_mean", "bias")) and value.dtype == np.float32:
            weights[name] = rng.normal(0, 0.2, value.shape).astype(np.float32)
        elif name.endswith(("running_var",)):
            weights[name] = rng.uniform(0.5, 2.0, value.shape).astype(np.float32)
        elif name.endswith("pos_embed"):
            weights[name] = rng.normal(0, 0.1, value.shape).astype(np.float32)
    return weights


def batch_norm_eval(x, w, prefix, eps=1e-5):
    """BatchNorm in inference over axis 1."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = w[prefix + ".running_mean"].reshape(shape)
    var = w[prefix + ".running_var"].reshape(shape)
    return (x - mean) / np.sqrt(var + eps) * w[prefix + ".weight"].reshape(shape) + w[prefix + ".bias"].reshape(shape)


def linear(x, w, prefix):
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def conv1d_loops(x, weight, dilation=1, stride=1):
    """Direct definition: out[b, o, t] = sum_c sum_k w[o, c, k] x[b, c, t*stride + k*dilation]."""
    batch, _, length = x.shape
    out_channels, _, kernel = weight.shape
    out_length = (length - dilation * (kernel - 1) - 1) // stride + 1
    out = np.zeros((batch, out_channels, out_length), np.float64)
    for k in range(kernel):
        start = k * dilation
        window = x[:, :, start:start + stride * (out_length - 1) + 1:stride]
        out += np.einsum("oc,bct->bot", weight[:, :, k], window)
    return out


def reference_simplebaseline(x, w, stages=2):
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    y = relu(batch_norm_eval(linear(x, w, "w1"), w, "batch_norm1"))
    for stage in range(stages):
        prefix = f"linear_stages.{stage}"
        h = relu(batch_norm_eval(linear(y, w, prefix + ".w1"), w, prefix + ".batch_norm1"))
        h = relu(batch_norm_eval(linear(h, w, prefix + ".w2"), w, prefix + ".batch_norm2"))
        y = y + h
    return linear(y, w, "w2")


def reference_videopose3d(x, w, widths=(3, 3, 3, 3, 3)):
    """Dilated TemporalModel, non-causal, inference."""
    batch, frames = x.shape[:2]
    h = x.reshape(batch, frames, -1).transpose(0, 2, 1)
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    h = relu(batch_norm_eval(conv1d_loops(h, w["expand_conv.weight"]), w, "expand_bn"))
    dilation = widths[0]
    for block in range(len(widths) - 1):
        pad = (widths[block + 1] - 1) * dilation // 2
        residual = h[:, :, pad:h.shape[2] - pad]
        h = relu(batch_norm_eval(conv1d_loops(h, w[f"layers_conv.{2 * block}.weight"], dilation), w,
                                 f"layers_bn.{2 * block}"))
        h = residual + relu(batch_norm_eval(conv1d_loops(h, w[f"layers_conv.{2 * block + 1}.weight"]), w,
                                            f"layers_bn.{2 * block + 1}"))
        dilation *= widths[block + 1]
    h = conv1d_loops(h, w["shrink.weight"]) + w["shrink.bias"][None, :, None]
    return h.transpose(0, 2, 1).reshape(batch, -1, 17, 3)


def layer_norm(x, w, prefix, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w[prefix + ".weight"] + w[prefix + ".bias"]


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def attention_block(x, w, prefix, heads):
    """timm Block: x + Attn(LN(x)); x + MLP(LN(x)); per-head loops for clarity."""
    tokens, length, width = x.shape
    head = width // heads
    h = layer_norm(x, w, prefix + ".norm1", 1e-6)
    qkv = linear(h, w, prefix + ".attn.qkv")  # (N, L, 3*width), laid out as (3, heads, head)
    out = np.zeros_like(h)
    for index in range(heads):
        q = qkv[:, :, 0 * width + index * head:0 * width + (index + 1) * head]
        k = qkv[:, :, 1 * width + index * head:1 * width + (index + 1) * head]
        v = qkv[:, :, 2 * width + index * head:2 * width + (index + 1) * head]
        scores = q @ k.transpose(0, 2, 1) * head ** -0.5
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        out[:, :, index * head:(index + 1) * head] = scores @ v
    x = x + linear(out, w, prefix + ".attn.proj")
    h = layer_norm(x, w, prefix + ".norm2", 1e-6)
    return x + linear(gelu(linear(h, w, prefix + ".mlp.fc1")), w, prefix + ".mlp.fc2")


def reference_poseformer(x, w, depth, heads=8):
    batch, frames, joints, _ = x.shape
    h = x.reshape(batch * frames, joints, 2)  # (b f) p c, the same as permute + rearrange
    h = linear(h, w, "Spatial_patch_to_embedding") + w["Spatial_pos_embed"]
    for block in range(depth):
        h = attention_block(h, w, f"Spatial_blocks.{block}", heads)
    h = layer_norm(h, w, "Spatial_norm", 1e-6)
    h = h.reshape(batch, frames, -1) + w["Temporal_pos_embed"]
    for block in range(depth):
        h = attention_block(h, w, f"blocks.{block}", heads)
    h = layer_norm(h, w, "Temporal_norm", 1e-6)
    pooled = np.einsum("bfc,f->bc", h, w["weighted_mean.weight"][0, :, 0]) + w["weighted_mean.bias"][0]
    pooled = layer_norm(pooled, w, "head.0", 1e-5)
    return linear(pooled, w, "head.1").reshape(batch, 1, joints, 3)


def run_example(name, overrides, inputs, seed):
    graph, result = build(str(EXAMPLES / f"{name}.pose"), mode="infer", overrides=overrides)
    assert graph is not None, result.diagnostics
    weights = randomized_weights(graph, seed)
    return run_graph(graph, inputs, weights), weights


def test_simplebaseline_matches_reference():
    for batch, seed in ((3, 0), (8, 1)):
        x = np.random.default_rng(seed).standard_normal((batch, 32)).astype(np.float32)
        outputs, weights = run_example("simplebaseline", {"linear_size": 48}, {"pose_2d": x}, seed)
        np.testing.assert_allclose(outputs["pose_3d"], reference_simplebaseline(x, weights), rtol=1e-4, atol=1e-4)


def test_videopose3d_matches_reference():
    for shape, widths, seed in (((2, 243, 17, 2), (3, 3, 3, 3, 3), 0), ((1, 40, 17, 2), (3, 3, 3), 1)):
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        overrides = {"channels": 32, "filter_widths": widths}
        outputs, weights = run_example("videopose3d", overrides, {"keypoints": x}, seed)
        expected = reference_videopose3d(x, weights, widths)
        assert outputs["pose"].shape == expected.shape == (shape[0], shape[1] - math.prod(widths) + 1, 17, 3)
        np.testing.assert_allclose(outputs["pose"], expected, rtol=1e-3, atol=1e-4)


def test_poseformer_matches_reference():
    for batch, frames, seed in ((2, 9, 0), (3, 27, 1)):
        x = np.random.default_rng(seed).standard_normal((batch, frames, 17, 2)).astype(np.float32)
        overrides = {"num_frame": frames, "embed_dim_ratio": 16, "depth": 2}
        outputs, weights = run_example("poseformer", overrides, {"keypoints": x}, seed)
        expected = reference_poseformer(x, weights, depth=2)
        np.testing.assert_allclose(outputs["pose"], expected, rtol=1e-3, atol=1e-4)


H36M_FLIP = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]  # the reference's L/R lists


def test_videopose3d_flip_augmentation_matches_the_recipe():
    """pose = (f(x) + unflip(f(flip(x)))) / 2 with the reference's joint lists and x negation."""
    overrides = {"channels": 16, "filter_widths": (3, 3)}
    plain, _ = build(str(EXAMPLES / "videopose3d.pose"), overrides=overrides)
    tta, _ = build(str(EXAMPLES / "videopose3d.pose"), overrides={**overrides, "test_time_flip": True})
    weights = randomized_weights(plain, 5)
    for batch, frames in ((1, 9), (3, 20)):
        x = np.random.default_rng(frames).standard_normal((batch, frames, 17, 2)).astype(np.float32)
        flipped = x[:, :, H36M_FLIP] * np.array([-1, 1], np.float32)
        y = run_graph(plain, {"keypoints": x}, weights)["pose"]
        y_flipped = run_graph(plain, {"keypoints": flipped}, weights)["pose"]
        expected = (y + y_flipped[:, :, H36M_FLIP] * np.array([-1, 1, 1], np.float32)) / 2
        np.testing.assert_allclose(run_graph(tta, {"keypoints": x}, weights)["pose"], expected, rtol=1e-5, atol=1e-6)


def perturbed(weights, seed):
    """Also make LayerNorm scales, embeddings and MotionBERT's zero-initialized fusion weights non-trivial."""
    rng = np.random.default_rng(seed + 200)
    for name, value in weights.items():
        if name.endswith("weight") and value.ndim == 1:
            weights[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
        elif name.endswith("embed") or name.startswith("ts_attn"):
            weights[name] = rng.normal(0, 0.3, value.shape).astype(np.float32)
    return weights


def run_both_modes(name, overrides, inputs, targets, seed):
    """Inference outputs and the training flow's loss (dropout and drop path at 0), on the same weights."""
    infer, result = build(str(EXAMPLES / f"{name}.pose"), mode="infer", overrides=overrides)
    assert infer is not None, result.diagnostics
    train, result = build(str(EXAMPLES / f"{name}.pose"), mode="train", overrides=overrides)
    assert train is not None, result.diagnostics
    weights = perturbed(randomized_weights(infer, seed), seed)
    outputs = run_graph(infer, inputs, weights)
    trained = run_graph(train, {**inputs, **targets}, weights)
    np.testing.assert_allclose(trained["pose"], outputs["pose"], rtol=1e-5, atol=1e-6)
    return outputs["pose"], trained["loss"], weights


def mpjpe(pred, target):
    return np.mean(np.linalg.norm(pred - target, axis=-1))


MIXSTE_JOINT_WEIGHTS = np.array([1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1.5, 1.5, 4, 4, 1.5, 4, 4])


def reference_mixste(x, w, depth, heads=8):
    """MixSTE2: STE/TTE stage 0 with the embeddings, then stages 1.. with the same two norms."""
    batch, frames, joints, _ = x.shape
    h = linear(x.reshape(batch * frames, joints, -1), w, "Spatial_patch_to_embedding") + w["Spatial_pos_embed"]
    for stage in range(depth):
        h = h.reshape(batch * frames, joints, -1)  # b f n c -> (b f) n c
        h = layer_norm(attention_block(h, w, f"STEblocks.{stage}", heads), w, "Spatial_norm", 1e-6)
        # (b f) n c -> (b n) f c: the frames of each joint become one sequence.
        h = h.reshape(batch, frames, joints, -1).transpose(0, 2, 1, 3).reshape(batch * joints, frames, -1)
        if stage == 0:
            h = h + w["Temporal_pos_embed"]
        h = layer_norm(attention_block(h, w, f"TTEblocks.{stage}", heads), w, "Temporal_norm", 1e-6)
        h = h.reshape(batch, joints, frames, -1).transpose(0, 2, 1, 3)  # (b n) f c -> b f n c
    return linear(layer_norm(h, w, "head.0", 1e-5), w, "head.1")


def reference_mixste_loss(pred, target):
    """w-MPJPE + 0.5 * weighted temporal consistency + 2 * MPJVE along the frames."""
    weights = MIXSTE_JOINT_WEIGHTS
    weighted = np.mean(weights * np.linalg.norm(pred - target, axis=-1))
    motion = pred[:, 1:] - pred[:, :-1]
    consistency = np.mean(weights[:, None] * motion ** 2)
    velocity = mpjpe(np.diff(pred, axis=1), np.diff(target, axis=1))
    return weighted + 0.5 * consistency + 2.0 * velocity


def test_mixste_matches_reference():
    for batch, frames, seed in ((2, 9, 0), (3, 27, 1)):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, frames, 17, 2)).astype(np.float32)
        target = rng.standard_normal((batch, frames, 17, 3)).astype(np.float32)
        overrides = {"num_frame": frames, "embed_dim_ratio": 16, "depth": 2, "drop_path_rate": 0.0}
        pose, loss, weights = run_both_modes("mixste", overrides, {"keypoints": x}, {"target": target}, seed)
        expected = reference_mixste(x, weights, depth=2)
        assert pose.shape == expected.shape == (batch, frames, 17, 3)
        np.testing.assert_allclose(pose, expected, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(loss, reference_mixste_loss(expected, target), rtol=1e-4)


def softmax_last(x):
    x = np.exp(x - x.max(-1, keepdims=True))
    return x / x.sum(-1, keepdims=True)


def dstformer_attention(x, w, prefix, heads, frames, temporal):
    """One attention head at a time: over the joints of a frame, or over the frames of a joint."""
    tokens, joints, width = x.shape
    head = width // heads
    qkv = linear(x, w, prefix + ".qkv")  # (B*T, J, 3*width), laid out as (3, heads, head)
    out = np.zeros_like(x)
    for index in range(heads):
        q, k, v = (qkv[:, :, part * width + index * head:part * width + (index + 1) * head] for part in range(3))
        if temporal:  # (B*T, J, d) -> (B, J, T, d)
            q, k, v = (a.reshape(tokens // frames, frames, joints, head).transpose(0, 2, 1, 3) for a in (q, k, v))
        mixed = softmax_last(q @ np.swapaxes(k, -1, -2) * head ** -0.5) @ v
        if temporal:
            mixed = mixed.transpose(0, 2, 1, 3).reshape(tokens, joints, head)
        out[:, :, index * head:(index + 1) * head] = mixed
    return linear(out, w, prefix + ".proj")


def dstformer_block(x, w, prefix, heads, frames, order):
    """Four residual sub-layers; order "st" = spatial first, "ts" = temporal first."""
    for stream in order:
        h = layer_norm(x, w, f"{prefix}.norm1_{stream}", 1e-6)
        x = x + dstformer_attention(h, w, f"{prefix}.attn_{stream}", heads, frames, stream == "t")
        h = layer_norm(x, w, f"{prefix}.norm2_{stream}", 1e-6)
        x = x + linear(gelu(linear(h, w, f"{prefix}.mlp_{stream}.fc1")), w, f"{prefix}.mlp_{stream}.fc2")
    return x


def reference_motionbert(x, w, depth, heads=8):
    """DSTformer with att_fuse: embeddings (temp_embed cut to T), ST/TS pairs fused per token, tanh head."""
    batch, frames, joints, _ = x.shape
    h = linear(x.reshape(batch * frames, joints, -1), w, "joints_embed") + w["pos_embed"]
    h = (h.reshape(batch, frames, joints, -1) + w["temp_embed"][:, :frames]).reshape(batch * frames, joints, -1)
    for index in range(depth):
        x_st = dstformer_block(h, w, f"blocks_st.{index}", heads, frames, "st")
        x_ts = dstformer_block(h, w, f"blocks_ts.{index}", heads, frames, "ts")
        alpha = softmax_last(linear(np.concatenate([x_st, x_ts], -1), w, f"ts_attn.{index}"))
        h = x_st * alpha[:, :, 0:1] + x_ts * alpha[:, :, 1:2]
    h = layer_norm(h, w, "norm", 1e-6).reshape(batch, frames, joints, -1)
    return linear(np.tanh(linear(h, w, "pre_logits.fc")), w, "head")


def reference_motionbert_loss(pred, target):
    """MPJPE + 0.5 * N-MPJPE + 20 * velocity error (MB_ft_h36m's non-zero loss weights)."""
    scale = (np.mean(np.sum(target * pred, axis=3, keepdims=True), axis=2, keepdims=True)
             / np.mean(np.sum(pred * pred, axis=3, keepdims=True), axis=2, keepdims=True))
    velocity = mpjpe(pred[:, 1:] - pred[:, :-1], target[:, 1:] - target[:, :-1])
    return mpjpe(pred, target) + 0.5 * mpjpe(scale * pred, target) + 20.0 * velocity


def test_motionbert_matches_reference():
    """One set of hyper-parameters (maxlen 27), two clip lengths: temp_embed is cut to the runtime T."""
    overrides = {"dim_feat": 16, "dim_rep": 24, "depth": 2, "maxlen": 27, "mlp_ratio": 2.0}
    for batch, frames, seed in ((2, 9, 0), (1, 27, 1)):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, frames, 17, 3)).astype(np.float32)
        target = rng.standard_normal((batch, frames, 17, 3)).astype(np.float32)
        pose, loss, weights = run_both_modes("motionbert", overrides, {"keypoints": x}, {"target": target}, seed)
        expected = reference_motionbert(x, weights, depth=2)
        assert pose.shape == expected.shape == (batch, frames, 17, 3)
        np.testing.assert_allclose(pose, expected, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(loss, reference_motionbert_loss(expected, target), rtol=1e-4)


# --------------------------------------------------------------------------- SemGCN

# SemGCN's 16 joints (reference section 1.1, "Other layouts"), written out here, not read from poseir.
SEMGCN_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14]


def semgcn_mask():
    """The adjacency's non-zero pattern: the 15 parent edges in both directions plus the 16 self loops."""
    mask = np.eye(len(SEMGCN_PARENTS), dtype=bool)
    for child, parent in enumerate(SEMGCN_PARENTS):
        if parent >= 0:
            mask[child, parent] = mask[parent, child] = True
    return mask


def sem_graph_conv(x, w, prefix, mask):
    """SemGraphConv: e on the mask (row-major, as torch's `adj[m] = e` fills it), -9e15 elsewhere,
    softmax over each row; the diagonal mixes x W[0], the rest x W[1]; plus the bias."""
    h0 = x @ w[prefix + ".W"][0]
    h1 = x @ w[prefix + ".W"][1]
    logits = np.full(mask.shape, -9e15)
    logits[mask] = w[prefix + ".e"][0]
    adj = np.exp(logits - logits.max(axis=1, keepdims=True))
    adj /= adj.sum(axis=1, keepdims=True)
    eye = np.eye(len(mask))
    return (adj * eye) @ h0 + (adj * (1 - eye)) @ h1 + w[prefix + ".bias"].reshape(1, 1, -1)


def batch_norm_train(x, w, prefix, eps=1e-5):
    """BatchNorm with the batch's statistics (biased variance) over every axis but 1."""
    axes = (0, *range(2, x.ndim))
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean) / np.sqrt(var + eps) * w[prefix + ".weight"].reshape(shape) + w[prefix + ".bias"].reshape(shape)


def reference_semgcn(x, w, layers, train=False):
    """Input _GraphConv, `layers` residual pairs, output SemGraphConv; BN over the channels of each joint."""
    mask = semgcn_mask()
    norm = batch_norm_train if train else batch_norm_eval

    def graph_conv(h, prefix):
        h = sem_graph_conv(h, w, prefix + ".gconv", mask).transpose(0, 2, 1)  # (B, C, J) for BatchNorm1d
        return np.maximum(norm(h, w, prefix + ".bn").transpose(0, 2, 1), 0)

    h = graph_conv(x.astype(np.float64), "gconv_input.0")
    for layer in range(layers):
        h = h + graph_conv(graph_conv(h, f"gconv_layers.{layer}.gconv1"), f"gconv_layers.{layer}.gconv2")
    return sem_graph_conv(h, w, "gconv_output", mask)


def test_semgcn_matches_reference():
    """Inference (running statistics) and training (batch statistics, MSE loss), with random `e` and BN."""
    assert semgcn_mask().sum() == 46
    overrides = {"hid_dim": 32, "num_layers": 2}
    infer, result = build(str(EXAMPLES / "semgcn.pose"), mode="infer", overrides=overrides)
    assert infer is not None, result.diagnostics
    train, result = build(str(EXAMPLES / "semgcn.pose"), mode="train", overrides=overrides)
    assert train is not None, result.diagnostics
    for batch, seed in ((2, 0), (9, 1)):
        weights = perturbed(randomized_weights(infer, seed), seed)
        rng = np.random.default_rng(seed)
        for name in weights:
            if name.endswith(".e"):  # the learned adjacency weights, initialized to 1
                weights[name] = rng.normal(0, 1.0, weights[name].shape).astype(np.float32)
        x = rng.standard_normal((batch, 16, 2)).astype(np.float32)
        target = rng.standard_normal((batch, 16, 3)).astype(np.float32)
        pose = run_graph(infer, {"pose_2d": x}, weights)["pose_3d"]
        expected = reference_semgcn(x, weights, layers=2)
        assert pose.shape == expected.shape == (batch, 16, 3)
        np.testing.assert_allclose(pose, expected, rtol=1e-4, atol=1e-4)
        trained = run_graph(train, {"pose_2d": x, "target": target}, weights)
        expected = reference_semgcn(x, weights, layers=2, train=True)
        np.testing.assert_allclose(trained["pose_3d"], expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(trained["loss"], np.mean((expected - target) ** 2), rtol=1e-4)


# --------------------------------------------------------------------------- Integral regression


def conv2d_taps(x, weight, stride=1, padding=0):
    """out[b, o, i, j] = sum_{c, u, v} w[o, c, u, v] xpad[b, c, i*stride + u, j*stride + v], one tap at a time."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kernel_h, kernel_w = weight.shape[2:]
    out_h = (x.shape[2] - kernel_h) // stride + 1
    out_w = (x.shape[3] - kernel_w) // stride + 1
    out = np.zeros((x.shape[0], weight.shape[0], out_h, out_w))
    for u in range(kernel_h):
        for v in range(kernel_w):
            window = x[:, :, u:u + stride * (out_h - 1) + 1:stride, v:v + stride * (out_w - 1) + 1:stride]
            out += np.einsum("oc,bchw->bohw", weight[:, :, u, v], window)
    return out


def max_pool_3x3_s2_p1(x):
    """torch MaxPool2d(3, 2, 1): the maximum over each window, padding with -inf."""
    x = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    out_h, out_w = (x.shape[2] - 3) // 2 + 1, (x.shape[3] - 3) // 2 + 1
    out = np.full((*x.shape[:2], out_h, out_w), -np.inf)
    for u in range(3):
        for v in range(3):
            out = np.maximum(out, x[:, :, u:u + 2 * (out_h - 1) + 1:2, v:v + 2 * (out_w - 1) + 1:2])
    return out


def conv_transpose_k4_s2_p1(x, weight):
    """ConvTranspose2d(k 4, stride 2, padding 1) by its definition: input pixel (i, j) adds x[:, c, i, j] *
    w[c, o, u, v] at output (2i + u - 1, 2j + v - 1); what falls outside the (2H, 2W) output is dropped."""
    batch, _, height, width = x.shape
    full = np.zeros((batch, weight.shape[1], 2 * height + 2, 2 * width + 2))  # offset by the padding, 1
    for i in range(height):
        for j in range(width):
            full[:, :, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("bc,couv->bouv", x[:, :, i, j], weight)
    return full[:, :, 1:-1, 1:-1]


def batch_norm_batch_stats(x, w, prefix, eps=1e-5):
    """BatchNorm2d in training: normalized by the batch's mean and biased variance over (N, H, W)."""
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w[prefix + ".weight"][None, :, None, None] \
        + w[prefix + ".bias"][None, :, None, None]


def reference_soft_argmax(heatmaps, joints, depth):
    """Reference steps 5-7: one softmax per joint over its (depth, H, W) volume, marginals, expectations."""
    batch, _, height, width = heatmaps.shape
    p = softmax_last(heatmaps.reshape(batch, joints, depth * height * width)).reshape(batch, joints, depth, height,
                                                                                       width)
    expected_x = (p.sum(axis=(2, 3)) * np.arange(width)).sum(-1)
    expected_y = (p.sum(axis=(2, 4)) * np.arange(height)).sum(-1)
    expected_z = (p.sum(axis=(3, 4)) * np.arange(depth)).sum(-1)
    return np.stack([expected_x / width - 0.5, expected_y / height - 0.5, expected_z / depth - 0.5], axis=-1)


def reference_integral(image, w, layers, joints, depth, train=False):
    """ResPoseNet: torchvision ResNet (v1.5 Bottlenecks, no avgpool/fc), 3 deconv layers, 1x1 conv, soft-argmax."""
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    norm = batch_norm_batch_stats if train else batch_norm_eval
    h = relu(norm(conv2d_taps(image.astype(np.float64), w["backbone.conv1.weight"], 2, 3), w, "backbone.bn1"))
    h = max_pool_3x3_s2_p1(h)
    for stage, count in enumerate(layers):
        for block in range(count):
            prefix = f"backbone.layer{stage + 1}.{block}"
            stride = 2 if stage > 0 and block == 0 else 1
            out = relu(norm(conv2d_taps(h, w[prefix + ".conv1.weight"]), w, prefix + ".bn1"))
            out = relu(norm(conv2d_taps(out, w[prefix + ".conv2.weight"], stride, 1), w, prefix + ".bn2"))
            out = norm(conv2d_taps(out, w[prefix + ".conv3.weight"]), w, prefix + ".bn3")
            if block == 0:
                h = norm(conv2d_taps(h, w[prefix + ".downsample.0.weight"], stride), w, prefix + ".downsample.1")
            h = relu(out + h)
    for layer in range(3):
        h = conv_transpose_k4_s2_p1(h, w[f"head.features.{3 * layer}.weight"])
        h = relu(norm(h, w, f"head.features.{3 * layer + 1}"))
    heatmaps = conv2d_taps(h, w["head.features.9.weight"]) + w["head.features.9.bias"][None, :, None, None]
    return heatmaps, reference_soft_argmax(heatmaps, joints, depth)


def test_integral_matches_reference():
    """Heatmaps and coordinates in inference, and coordinates and the L1 loss in training (batch statistics)."""
    cases = [((2, 64, 64), {"width": 8, "depth": 8, "deconv_filters": 16}, 0),
             ((1, 96, 64), {"width": 4, "depth": 6, "joints": 5, "layers": (1, 2, 1, 1), "deconv_filters": 8}, 1)]
    for (batch, height, width), overrides, seed in cases:
        joints, depth = overrides.get("joints", 18), overrides["depth"]
        layers = overrides.get("layers", (3, 4, 6, 3))
        path = str(EXAMPLES / "integral.pose")
        infer, _ = build(path, mode="infer", overrides=overrides)
        train, _ = build(path, mode="train", overrides=overrides)
        weights = perturbed(randomized_weights(infer, seed), seed)
        weights["head.features.9.weight"] *= 20  # peaked heatmaps: the coordinates then vary between joints
        rng = np.random.default_rng(seed)
        image = rng.standard_normal((batch, 3, height, width)).astype(np.float32)
        target = rng.uniform(-0.5, 0.5, (batch, joints, 3)).astype(np.float32)
        visibility = (rng.random((batch, joints, 3)) < 0.8).astype(np.float32)
        outputs = run_graph(infer, {"image": image}, weights)
        heatmaps, coords = reference_integral(image, weights, layers, joints, depth)
        assert outputs["heatmaps"].shape == heatmaps.shape == (batch, joints * depth, height // 4, width // 4)
        np.testing.assert_allclose(outputs["heatmaps"], heatmaps, rtol=1e-3, atol=1e-3)
        assert coords.shape == (batch, joints, 3) and np.ptp(coords) > 0.1
        np.testing.assert_allclose(outputs["coords"], coords, rtol=1e-3, atol=1e-4)
        trained = run_graph(train, {"image": image, "target": target, "visibility": visibility}, weights)
        _, coords = reference_integral(image, weights, layers, joints, depth, train=True)
        np.testing.assert_allclose(trained["coords"], coords, rtol=1e-3, atol=5e-4)  # float32 batch statistics
        loss = np.sum(np.abs(coords - target) * visibility) / batch  # the reference's L1: sum, divided by B
        np.testing.assert_allclose(trained["loss"], loss, rtol=1e-3)


def test_soft_argmax_finds_the_peak_of_each_joint():
    """One sharp peak per joint at (z, y, x): SoftArgmax3d gives (x / W - 0.5, y / H - 0.5, z / D - 0.5)."""
    text = ("dim B, H, W\nmodel m = M()\nmodule M() {\n    self.integral = SoftArgmax3d(3, 4)\n"
            "    forward(x: f32[B, 12, H, W]) -> (y: f32[B, 3, 3]) {\n"
            "        return self.integral(x)\n    }\n}\n")
    graph, result = build("peak.pose", text=text)
    assert graph is not None, result.diagnostics
    peaks = [(0, 2, 7), (3, 0, 0), (1, 5, 9)]  # (z, y, x) of joints 0, 1, 2
    for height, width in ((6, 10), (16, 12)):
        x = np.zeros((2, 12, height, width), np.float32)
        for joint, (z, y, col) in enumerate(peaks):
            x[:, joint * 4 + z, y, col] = 40.0
        coords = run_graph(graph, {"x": x}, {})["y"]
        expected = [[col / width - 0.5, y / height - 0.5, z / 4 - 0.5] for z, y, col in peaks]
        np.testing.assert_allclose(coords, np.broadcast_to(expected, (2, 3, 3)), atol=1e-5)


# --------------------------------------------------------------------------- MHFormer


def heads_attention(q, k, v, heads):
    """softmax(q k^T / sqrt(d)) v for each head (a contiguous slice of the channels), one head at a time."""
    width = q.shape[-1]
    head = width // heads
    out = np.zeros_like(q)
    for index in range(heads):
        part = slice(index * head, (index + 1) * head)
        scores = softmax_last(q[..., part] @ np.swapaxes(k[..., part], -1, -2) * head ** -0.5)
        out[..., part] = scores @ v[..., part]
    return out


def self_attention(x, w, prefix, heads):
    """timm Attention: qkv laid out as (3, heads, head) on the output channels, then proj."""
    width = x.shape[-1]
    qkv = linear(x, w, prefix + ".qkv")
    q, k, v = qkv[..., :width], qkv[..., width:2 * width], qkv[..., 2 * width:]
    return linear(heads_attention(q, k, v, heads), w, prefix + ".proj")


def cross_attention(query_from, key_from, value_from, w, prefix, heads):
    """MHFormer Cross_Attention: separate q, k, v projections of three inputs, then proj."""
    q = linear(query_from, w, prefix + ".linear_q")
    k = linear(key_from, w, prefix + ".linear_k")
    v = linear(value_from, w, prefix + ".linear_v")
    return linear(heads_attention(q, k, v, heads), w, prefix + ".proj")


def hypothesis_mlp(hypotheses, w, prefix):
    """Concatenate the hypotheses on channels, x + MLP(LN(x)) with eps 1e-6, split back into thirds."""
    x = np.concatenate(hypotheses, axis=-1)
    h = layer_norm(x, w, prefix + ".norm2", 1e-6)
    x = x + linear(gelu(linear(h, w, prefix + ".mlp.fc1")), w, prefix + ".mlp.fc2")
    return np.split(x, 3, axis=-1)


def reference_mhformer(x, w, layers, train=False):
    """Reference section 3.6 (dropout and drop-path off): MHG over time, embeddings, SHR, CHI, regression."""
    norm = batch_norm_train if train else batch_norm_eval
    batch, frames, joints, _ = x.shape
    h = x.astype(np.float64).transpose(0, 2, 3, 1).reshape(batch, joints * 2, frames)  # b f j c -> b (j c) f
    hypotheses = []
    for k in (1, 2, 3):  # x_k = x_{k-1} + TE_k(LN_k(x_{k-1})), LayerNorm over the frames
        encoder = f"Transformer_encoder_{k}"
        encoded = layer_norm(h, w, f"norm_{k}", 1e-5) + w[encoder + ".pos_embed"]
        for block in range(4):
            encoded = attention_block(encoded, w, f"{encoder}.blocks.{block}", heads=9)
        h = h + layer_norm(encoded, w, encoder + ".norm", 1e-6)
        hypotheses.append(h)
    embedded = []
    for k, h in enumerate(hypotheses, start=1):
        if frames > 27:
            e = conv1d_loops(h, w[f"embedding_{k}.weight"]) + w[f"embedding_{k}.bias"][None, :, None]
        else:  # Conv1d, BatchNorm1d, ReLU (Dropout off)
            e = conv1d_loops(h, w[f"embedding_{k}.0.weight"]) + w[f"embedding_{k}.0.bias"][None, :, None]
            e = np.maximum(norm(e, w, f"embedding_{k}.1"), 0)
        embedded.append(e.transpose(0, 2, 1) + w[f"Transformer_hypothesis.pos_embed_{k}"])  # (B, F, C)
    x1, x2, x3 = embedded
    for block in range(layers - 1):
        shr = f"Transformer_hypothesis.SHR_blocks.{block}"
        x1, x2, x3 = (xk + self_attention(layer_norm(xk, w, f"{shr}.norm1_{k}", 1e-6), w, f"{shr}.attn_{k}", 8)
                      for k, xk in ((1, x1), (2, x2), (3, x3)))
        x1, x2, x3 = hypothesis_mlp((x1, x2, x3), w, shr)
    chi = "Transformer_hypothesis.CHI_blocks.0"

    def ln(v, name):
        return layer_norm(v, w, f"{chi}.norm3_{name}", 1e-6)

    # Sequential updates: queries from the other hypotheses (x1, x2 as already updated), values from itself.
    x1 = x1 + cross_attention(ln(x2, "11"), ln(x3, "12"), ln(x1, "13"), w, f"{chi}.attn_1", 8)
    x2 = x2 + cross_attention(ln(x1, "21"), ln(x3, "22"), ln(x2, "23"), w, f"{chi}.attn_2", 8)
    x3 = x3 + cross_attention(ln(x1, "31"), ln(x2, "32"), ln(x3, "33"), w, f"{chi}.attn_3", 8)
    x1, x2, x3 = hypothesis_mlp((x1, x2, x3), w, chi)
    h = layer_norm(np.concatenate([x1, x2, x3], -1), w, "Transformer_hypothesis.norm", 1e-6)
    h = norm(h.transpose(0, 2, 1), w, "regression.0")  # (B, 3C, F)
    h = conv1d_loops(h, w["regression.1.weight"]) + w["regression.1.bias"][None, :, None]  # (B, 3J, F)
    return h.reshape(batch, joints, 3, frames).transpose(0, 3, 1, 2)  # b (j c) f -> b f j c


def test_mhformer_matches_reference():
    """Inference at 27 frames (BatchNorm embeddings) and 36; training (batch statistics, root-zeroed
    MPJPE, dropout and drop-path at 0) at 36 and 45 frames."""
    path = str(EXAMPLES / "mhformer.pose")
    for mode, batch, frames, layers, seed in (("infer", 2, 27, 3, 0), ("infer", 3, 36, 2, 1),
                                              ("train", 2, 36, 3, 2), ("train", 3, 45, 2, 3)):
        overrides = {"frames": frames, "channel": 16, "d_hid": 24, "layers": layers, "drop_rate": 0.0,
                     "drop_path_rate": 0.0}
        graph, result = build(path, mode=mode, overrides=overrides)
        assert graph is not None, result.diagnostics
        weights = perturbed(randomized_weights(graph, seed), seed)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, frames, 17, 2)).astype(np.float32)
        target = rng.standard_normal((batch, frames, 17, 3)).astype(np.float32)
        inputs = {"keypoints": x, "target": target} if mode == "train" else {"keypoints": x}
        outputs = run_graph(graph, inputs, weights)
        expected = reference_mhformer(x, weights, layers, train=mode == "train")
        assert outputs["pose"].shape == expected.shape == (batch, frames, 17, 3)
        np.testing.assert_allclose(outputs["pose"], expected, rtol=1e-3, atol=1e-4)
        if mode == "train":
            root_zeroed = target.copy()
            root_zeroed[:, :, 0] = 0
            np.testing.assert_allclose(outputs["loss"], mpjpe(expected, root_zeroed), rtol=1e-4)


def test_mhformer_flip_augmentation_matches_the_recipe():
    """MHFormer's evaluation: (f(x) + unflip(f(flip(x)))) / 2 with its hard-coded joint lists."""
    overrides = {"frames": 27, "channel": 16, "d_hid": 24}
    path = str(EXAMPLES / "mhformer.pose")
    plain, _ = build(path, overrides=overrides)
    tta, _ = build(path, overrides={**overrides, "test_time_flip": True})
    weights = randomized_weights(plain, 4)
    x = np.random.default_rng(4).standard_normal((2, 27, 17, 2)).astype(np.float32)
    flipped = x[:, :, H36M_FLIP] * np.array([-1, 1], np.float32)
    y = run_graph(plain, {"keypoints": x}, weights)["pose"]
    y_flipped = run_graph(plain, {"keypoints": flipped}, weights)["pose"]
    expected = (y + y_flipped[:, :, H36M_FLIP] * np.array([-1, 1, 1], np.float32)) / 2
    np.testing.assert_allclose(run_graph(tta, {"keypoints": x}, weights)["pose"], expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- SemGCN with non-local blocks

# The official joint groups of the 16-joint skeleton, and the grouped and restored orders the
# reference (section 3.7) spells out.
SEMGCN_GROUPED = [2, 3, 5, 6, 1, 4, 0, 7, 8, 9, 14, 15, 11, 12, 10, 13]
SEMGCN_RESTORED = [6, 4, 0, 1, 5, 2, 3, 7, 8, 9, 14, 12, 13, 15, 10, 11]


def conv1x1(x, w, prefix):
    """A kernel-1 Conv1d with bias on (B, C, L)."""
    return np.einsum("oc,bcl->bol", w[prefix + ".weight"][:, :, 0], x) + w[prefix + ".bias"][None, :, None]


def non_local(h, w, prefix, norm):
    """_GraphNonLocal on (B, J, C): grouped order, the 1-D non-local block with sub-sample 2, restored order."""
    x = h[:, SEMGCN_GROUPED].transpose(0, 2, 1)  # (B, C, J)
    block = prefix + ".nonlocal"

    def pool_pairs(v):  # MaxPool1d(2): the larger of each pair of neighbours
        return np.maximum(v[:, :, 0::2], v[:, :, 1::2])

    g = pool_pairs(conv1x1(x, w, block + ".g.0"))  # (B, C/2, J/2)
    theta = conv1x1(x, w, block + ".theta")  # (B, C/2, J)
    phi = pool_pairs(conv1x1(x, w, block + ".phi.0"))  # (B, C/2, J/2)
    inter = theta.shape[1]
    project = w[block + ".concat_project.0.weight"][0, :, 0, 0]
    # The 1x1 Conv2d over [theta_i; phi_j] is a sum of a term in i and a term in j.
    f = np.maximum(np.einsum("c,bci->bi", project[:inter], theta)[:, :, None]
                   + np.einsum("c,bcj->bj", project[inter:], phi)[:, None, :], 0)
    y = np.einsum("bij,bcj->bci", f / f.shape[-1], g)  # (B, C/2, J)
    z = norm(conv1x1(y, w, block + ".W.0"), w, block + ".W.1") + x
    return z.transpose(0, 2, 1)[:, SEMGCN_RESTORED]


def reference_semgcn_nonlocal(x, w, layers, train=False):
    """SemGCN with a non-local block after the input layer and after each residual layer."""
    mask = semgcn_mask()
    norm = batch_norm_train if train else batch_norm_eval

    def graph_conv(h, prefix):
        h = sem_graph_conv(h, w, prefix + ".gconv", mask).transpose(0, 2, 1)
        return np.maximum(norm(h, w, prefix + ".bn").transpose(0, 2, 1), 0)

    h = non_local(graph_conv(x.astype(np.float64), "gconv_input.0"), w, "gconv_input.1", norm)
    for layer in range(layers):
        residual = f"gconv_layers.{2 * layer}"
        h = h + graph_conv(graph_conv(h, residual + ".gconv1"), residual + ".gconv2")
        h = non_local(h, w, f"gconv_layers.{2 * layer + 1}", norm)
    return sem_graph_conv(h, w, "gconv_output", mask)


def test_semgcn_restored_order_inverts_the_grouping():
    assert [SEMGCN_GROUPED[index] for index in SEMGCN_RESTORED] == list(range(16))


def test_semgcn_nonlocal_matches_reference():
    """Inference and training (batch statistics, MSE loss), with the non-local BatchNorm scale away from 0."""
    path = str(EXAMPLES / "semgcn_nonlocal.pose")
    for batch, layers, seed in ((2, 2, 0), (7, 1, 1)):
        overrides = {"hid_dim": 32, "num_layers": layers}
        infer, result = build(path, mode="infer", overrides=overrides)
        assert infer is not None, result.diagnostics
        train, result = build(path, mode="train", overrides=overrides)
        assert train is not None, result.diagnostics
        weights = perturbed(randomized_weights(infer, seed), seed)
        rng = np.random.default_rng(seed)
        for name in weights:
            if name.endswith(".e"):
                weights[name] = rng.normal(0, 1.0, weights[name].shape).astype(np.float32)
        x = rng.standard_normal((batch, 16, 2)).astype(np.float32)
        target = rng.standard_normal((batch, 16, 3)).astype(np.float32)
        pose = run_graph(infer, {"pose_2d": x}, weights)["pose_3d"]
        expected = reference_semgcn_nonlocal(x, weights, layers)
        assert pose.shape == expected.shape == (batch, 16, 3)
        np.testing.assert_allclose(pose, expected, rtol=1e-4, atol=1e-4)
        trained = run_graph(train, {"pose_2d": x, "target": target}, weights)
        expected = reference_semgcn_nonlocal(x, weights, layers, train=True)
        np.testing.assert_allclose(trained["pose_3d"], expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(trained["loss"], np.mean((expected - target) ** 2), rtol=1e-4)


# --------------------------------------------------------------------------- P-STMO
# Written from the official code (paTRICK-swk/P-STMO: model/stmo.py and the two transformer
# encoders in model/block/), with loops where clearer; dropout is off (inference, or 0 in training).


def annotated_layer_norm(x, w, prefix, eps=1e-6):
    """a_2 * (x - mean) / (std + eps) + b_2, with the unbiased std torch's `x.std` computes."""
    mean = x.mean(-1, keepdims=True)
    std = x.std(-1, ddof=1, keepdims=True)
    return w[prefix + ".a_2"] * (x - mean) / (std + eps) + w[prefix + ".b_2"]


def pstmo_attention(x, w, prefix, heads=8):
    """Four projections in `linears`: query, key, value, then the output of the concatenated heads."""
    q, k, v = (linear(x, w, f"{prefix}.linears.{index}") for index in range(3))
    return linear(heads_attention(q, k, v, heads), w, prefix + ".linears.3")


def conv1d_same_padding(x, w, prefix, stride):
    """A kernel-3 convolution with one frame of zero padding on each side and a stride."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1)))
    return conv1d_loops(padded, w[prefix + ".weight"], stride=stride) + w[prefix + ".bias"][None, :, None]


def leaky_relu(x, slope=0.2):
    return np.where(x >= 0, x, slope * x)


def reference_pstmo(x, w, layers, strides, train=False):
    """(B, 2, F, J, 1) -> the STE output (B, 3, F', J, 1) and the VTE output (B, 3, F, J, 1)."""
    norm = batch_norm_train if train else batch_norm_eval
    batch, _, frames, joints, _ = x.shape
    h = x[..., 0].astype(np.float64).transpose(0, 2, 3, 1).reshape(batch, frames, joints * 2)
    h = h.transpose(0, 2, 1)  # (B, 2J, F): channel 2j + c
    # FCBlock: conv, BN, LeakyReLU(0.2), one residual block of two such, then the output conv.
    h = leaky_relu(norm(conv1x1(h, w, "encoder.fc_1"), w, "encoder.bn_1"))
    y = leaky_relu(norm(conv1x1(h, w, "encoder.layers.0.w1"), w, "encoder.layers.0.batch_norm1"))
    y = leaky_relu(norm(conv1x1(y, w, "encoder.layers.0.w2"), w, "encoder.layers.0.batch_norm2"))
    h = conv1x1(h + y, w, "encoder.fc_2").transpose(0, 2, 1)  # (B, F, C)
    # VTE: positional embedding, then pre-norm attention and feed-forward residuals.
    h = h + w["Transformer.pos_embedding"]
    for index in range(layers):
        prefix = f"Transformer.model.layers.{index}"
        h = h + pstmo_attention(annotated_layer_norm(h, w, prefix + ".sublayer.0.norm"), w, prefix + ".self_attn")
        ff = annotated_layer_norm(h, w, prefix + ".sublayer.1.norm")
        ff = linear(np.maximum(linear(ff, w, prefix + ".feed_forward.w_1"), 0), w, prefix + ".feed_forward.w_2")
        h = h + ff
    vte = conv1x1(norm(h.transpose(0, 2, 1), w, "fcn_1.0"), w, "fcn_1.1")  # (B, 3J, F), channel 3j + c
    vte = vte.reshape(batch, joints, 3, frames).transpose(0, 2, 3, 1)[..., None]
    # STE: embeddings cut to the current length before the first three layers; each layer's
    # feed-forward strides, and its residual keeps every stride-th frame (a kernel-1 max pool).
    for index, stride in enumerate(strides):
        prefix = f"Transformer_reduce.model.layers.{index}"
        if index < 3:
            h = h + w[f"Transformer_reduce.model.pos_embedding_{index + 1}"][:, :h.shape[1]]
        h = h + pstmo_attention(annotated_layer_norm(h, w, prefix + ".sublayer.0.norm"), w, prefix + ".self_attn")
        ff = annotated_layer_norm(h, w, prefix + ".sublayer.1.norm").transpose(0, 2, 1)
        ff = np.maximum(conv1x1(ff, w, prefix + ".feed_forward.w_1"), 0)
        ff = conv1d_same_padding(ff, w, prefix + ".feed_forward.w_2", stride).transpose(0, 2, 1)
        h = h[:, ::stride] + ff
    ste = conv1x1(norm(h.transpose(0, 2, 1), w, "fcn.0"), w, "fcn.1")
    ste = ste.reshape(batch, joints, 3, -1).transpose(0, 2, 3, 1)[..., None]
    return ste, vte


def pstmo_weights(graph, seed):
    """Randomized weights with the LayerNorms' a_2 and b_2 away from 1 and 0."""
    weights = randomized_weights(graph, seed)
    rng = np.random.default_rng(seed + 300)
    for name, value in weights.items():
        if name.endswith(".a_2"):
            weights[name] = rng.uniform(0.5, 1.5, value.shape).astype(np.float32)
        elif name.endswith(".b_2"):
            weights[name] = rng.normal(0, 0.2, value.shape).astype(np.float32)
    return weights


def test_pstmo_matches_reference():
    """Inference at 27 frames (three stride-3 layers), 9 frames (strides [1, 3, 3]: the first layer keeps
    its residual) and 81 frames (a fourth layer without an embedding); training (batch statistics, the
    official root-zeroed two-term MPJPE, dropout 0) at 27 and 9 frames."""
    path = str(EXAMPLES / "pstmo.pose")
    for mode, batch, frames, strides, layers, seed in (
            ("infer", 2, 27, [3, 3, 3], 2, 0), ("infer", 3, 9, [1, 3, 3], 1, 1), ("infer", 1, 81, [3, 3, 3, 3], 1, 2),
            ("train", 2, 27, [3, 3, 3], 2, 3), ("train", 4, 9, [1, 3, 3], 1, 4)):
        overrides = {"frames": frames, "stride_num": strides, "layers": layers, "channel": 16, "d_hid": 24,
                     "dropout": 0.0}
        graph, result = build(path, mode=mode, overrides=overrides)
        assert graph is not None, result.diagnostics
        weights = pstmo_weights(graph, seed)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, 2, frames, 17, 1)).astype(np.float32)
        target = rng.standard_normal((batch, frames, 17, 3)).astype(np.float32)
        inputs = {"x": x, "target": target} if mode == "train" else {"x": x}
        outputs = run_graph(graph, inputs, weights)
        ste, vte = reference_pstmo(x, weights, layers, strides, train=mode == "train")
        assert outputs["output_3D"].shape == ste.shape == (batch, 3, 1, 17, 1)
        assert outputs["output_3D_VTE"].shape == vte.shape == (batch, 3, frames, 17, 1)
        np.testing.assert_allclose(outputs["output_3D"], ste, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(outputs["output_3D_VTE"], vte, rtol=1e-3, atol=1e-4)
        if mode == "train":
            root_zeroed = target.copy()
            root_zeroed[:, :, 0] = 0
            as_poses = lambda out: out[..., 0].transpose(0, 2, 3, 1)  # noqa: E731  (B, 3, F, J) -> (B, F, J, 3)
            pad = (frames - 1) // 2
            expected = mpjpe(as_poses(vte), root_zeroed) + mpjpe(as_poses(ste), root_zeroed[:, pad:pad + 1])
            np.testing.assert_allclose(outputs["loss"], expected, rtol=1e-4)
