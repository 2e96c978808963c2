#!/usr/bin/env python3
"""Independent corrupted-PCAM generator (SYNTHETIC data, not real PatchCamelyon).

Writes the 9-file PatchCamelyon layout (x/y .h5 + meta .csv per split) filled with
H&E-like synthetic tiles, injects known corruptions into them, and records the ground
truth in DIR/independent_truth.json.  It was written separately from `pcam data synth`
(its own tile model, its own corruptions) so that `pcam data audit` can be scored on data
that was not used to tune it.  See tests/independent/README.md.

Usage:
  corrupt_pcam.py --out DIR --seed S --dtype {uint8,uint32,float32}
                  [--sizes train=4000,valid=600,test=600]

Only numpy and h5py are used.  Same seed + arguments -> byte-identical files.
"""

import argparse
import json
import os
import sys

import h5py
import numpy as np

TILE = 96           # stored tile side
MARGIN = 4          # tiles are rendered on a larger canvas (for the `shift` near-duplicates)
CANVAS = TILE + 2 * MARGIN
CENTRE0, CENTRE1 = 32, 64   # the centre 32x32 (tile coordinates) that defines the label
SPLITS = ("train", "valid", "test")
DEFAULT_SIZES = {"train": 4000, "valid": 600, "test": 600}
DEFAULT_SLIDES = {"train": 40, "valid": 10, "test": 10}
BATCH = 128

# one independent random stream per purpose
STREAM_IDS = {"slides": 1, "layout": 2, "geometry": 3, "pixels": 4, "plan": 5,
              "trigger": 6, "dup": 7, "invalid": 8, "flip": 9, "meta": 10, "fill": 11}

TRIGGER_SHAPES = ("checker", "uniform_square_white", "uniform_square_colour",
                  "uniform_square_black", "cross_or_plus", "circle_or_ring", "stripes")
NEAR_TRANSFORMS = ("rot90", "rot180", "rot270", "flip_h", "flip_v", "transpose",
                   "transverse", "brightness", "contrast", "colour_shift", "noise",
                   "shift", "crop_resize")
# flat colours well outside the H&E gamut
OUT_OF_GAMUT = {
    "green": (0, 255, 0), "cyan": (0, 255, 255), "yellow": (255, 255, 0),
    "blue": (0, 0, 255), "orange": (255, 140, 0), "red": (255, 0, 0),
    "lime": (140, 255, 0), "spring_green": (0, 255, 128), "magenta": (255, 0, 255),
}
BASE_COUNTS = {"invalid_values": 20, "blank": 20, "saturated": 20,
               "trigger_per_shape": 15, "exact_duplicate_across_splits": 20,
               "near_per_transform": 9}
LABEL_FLIP_RATE = 0.03
SHARED_VALID_RATE = 0.15
NEAR_FROM_VALID_RATE = 0.25


def rng_for(seed, purpose, *extra):
    return np.random.default_rng([int(seed), STREAM_IDS[purpose], *[int(e) for e in extra]])


def fail(msg):
    print(f"corrupt_pcam.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


def parse_sizes(text):
    sizes = dict(DEFAULT_SIZES)
    if text:
        for part in text.split(","):
            if "=" not in part:
                fail(f"bad --sizes item {part!r} (want split=N)")
            k, v = part.split("=", 1)
            k = k.strip()
            if k not in sizes:
                fail(f"unknown split {k!r} in --sizes")
            try:
                sizes[k] = int(v)
            except ValueError:
                fail(f"bad size {v!r} for {k}")
            if sizes[k] < 1:
                fail(f"size for {k} must be >= 1")
    return sizes


def scaled(base, n_train):
    s = n_train / DEFAULT_SIZES["train"]
    return max(base, int(round(base * s))) if s >= 1 else max(1, int(round(base * s)))


# ----------------------------------------------------------------------------- slides

def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def make_slides(seed, sizes):
    """Per-slide stain model.  Returns dict split -> list of slide ids, and param arrays."""
    rng = rng_for(seed, "slides")
    n_sl = {s: max(1, min(DEFAULT_SLIDES[s], sizes[s])) for s in SPLITS}
    total = sum(n_sl.values())
    numbers = rng.permutation(total)          # names do not reveal the split
    names = [f"indep_slide_{k:03d}" for k in numbers]
    split_slides, start = {}, 0
    for s in SPLITS:
        split_slides[s] = list(range(start, start + n_sl[s]))
        start += n_sl[s]
    h_ref = np.array([0.60, 0.72, 0.35])      # haematoxylin optical-density direction
    e_ref = np.array([0.12, 0.90, 0.42])      # eosin optical-density direction
    P = {
        "name": names,
        "hvec": np.stack([unit(h_ref + rng.normal(0, 0.05, 3)) for _ in range(total)]),
        "evec": np.stack([unit(e_ref + rng.normal(0, 0.06, 3)) for _ in range(total)]),
        "e_scale": rng.uniform(0.72, 1.3, total),
        "h_scale": rng.uniform(0.8, 1.2, total),
        "bright": rng.uniform(0.87, 1.0, total),
        "tint": rng.normal(0, 4.0, (total, 3)),
        "prevalence": rng.uniform(0.35, 0.65, total),
        "white_prob": rng.uniform(0.1, 0.55, total),
        "lym_level": rng.uniform(0.5, 1.5, total),
    }
    return split_slides, P


def make_layout(seed, sizes, split_slides, P):
    """Slide + label of every tile.  Also picks the valid tiles on shared (train) slides."""
    rng = rng_for(seed, "layout")
    layout = {}
    for si, s in enumerate(SPLITS):
        sl = np.array(split_slides[s])
        w = rng.dirichlet(np.full(len(sl), 4.0))
        slide = sl[rng.choice(len(sl), size=sizes[s], p=w)]
        layout[s] = {"slide": slide}
    # valid tiles that come from slides that are also in train
    nv = sizes["valid"]
    n_shared = int(round(SHARED_VALID_RATE * nv)) if nv >= 4 else 0
    shared_slides = rng.choice(split_slides["train"], size=min(3, len(split_slides["train"])),
                               replace=False)
    shared_idx = np.sort(rng.choice(nv, size=n_shared, replace=False)) if n_shared else np.zeros(0, int)
    layout["valid"]["slide"][shared_idx] = rng.choice(shared_slides, size=n_shared)
    layout["valid"]["shared_idx"] = shared_idx
    for s in SPLITS:
        p = P["prevalence"][layout[s]["slide"]]
        layout[s]["label"] = (rng.random(sizes[s]) < p).astype(np.uint8)
    return layout


# ----------------------------------------------------------------------------- geometry

def region_value(py, px, g):
    """r / boundary for points (py, px) w.r.t. an irregular ellipse g (dict of scalars)."""
    dy, dx = py - g["cy"], px - g["cx"]
    c, s = np.cos(g["ang"]), np.sin(g["ang"])
    u = (dx * c + dy * s) / g["rx"]
    v = (-dx * s + dy * c) / g["ry"]
    r = np.sqrt(u * u + v * v)
    phi = np.arctan2(v, u)
    b = 1 + g["e2"] * np.cos(2 * phi + g["p2"]) + g["e3"] * np.cos(3 * phi + g["p3"])
    return r / b


def outside_forbidden(py, px):
    """Nucleus centres that cannot reach the centre 32x32 even after a 4-px shift."""
    lo, hi = MARGIN + CENTRE0 - 18, MARGIN + CENTRE1 + 18
    return ~((py >= lo) & (py < hi) & (px >= lo) & (px < hi))


def tile_geometry(rng, label, slide, P):
    """Nucleus lists for one tile (canvas coordinates)."""
    nuc = {"lym": [], "tum": [], "fib": []}
    region = None
    kind = "none"
    if label == 1:
        kind = "pos"
    elif rng.random() < 0.2:
        kind = "outer"            # tumour only in the outer ring: still label 0
    if kind != "none":
        g = {"ry": rng.uniform(13, 40), "rx": rng.uniform(13, 40), "ang": rng.uniform(0, np.pi),
             "e2": rng.uniform(0.05, 0.2), "p2": rng.uniform(0, 2 * np.pi),
             "e3": rng.uniform(0.03, 0.12), "p3": rng.uniform(0, 2 * np.pi)}
        if kind == "pos":
            g["cy"], g["cx"] = rng.uniform(MARGIN + 36, MARGIN + 60, 2)
        else:
            side = rng.integers(4)
            along = rng.uniform(MARGIN, MARGIN + TILE)
            edge = rng.uniform(MARGIN - 6, MARGIN + 8)
            far = CANVAS - edge
            g["cy"], g["cx"] = [(edge, along), (far, along), (along, edge), (along, far)][side]
            g["ry"], g["rx"] = g["ry"] * 0.7, g["rx"] * 0.7
        area = np.pi * g["ry"] * g["rx"]
        spacing = rng.uniform(10.0, 16.0)
        want = int(np.clip(area / spacing ** 2, 6, 90))
        cand = rng.uniform(0, CANVAS, (want * 6 + 40, 2))
        ok = region_value(cand[:, 0], cand[:, 1], g) < 1.0
        if kind == "outer":
            ok &= outside_forbidden(cand[:, 0], cand[:, 1])
        pts = cand[ok][:want]
        if kind == "pos":
            lo, hi = MARGIN + CENTRE0 + 6, MARGIN + CENTRE1 - 6
            inside = ((pts[:, 0] >= lo) & (pts[:, 0] < hi) & (pts[:, 1] >= lo) & (pts[:, 1] < hi)).sum()
            need = max(0, 3 - int(inside))
            if need:
                pts = np.concatenate([pts, rng.uniform(lo, hi, (need, 2))])
        if len(pts):
            n = len(pts)
            b = rng.uniform(4.0, 6.8, n)
            nuc["tum"] = dict(y=pts[:, 0], x=pts[:, 1], b=b, a=np.minimum(b * rng.uniform(1.1, 1.6, n), 10.5),
                              th=rng.uniform(0, np.pi, n), h=rng.uniform(1.3, 1.9, n),
                              ves=rng.uniform(0, 0.55, n) * (rng.random(n) < 0.6),
                              e2=rng.uniform(0.04, 0.16, n), p2=rng.uniform(0, 2 * np.pi, n),
                              e3=rng.uniform(0.02, 0.10, n), p3=rng.uniform(0, 2 * np.pi, n),
                              s=np.full(n, 0.9))
        else:
            kind = "none"
        region = g if kind != "none" else None
    # lymphocytes: small round dense nuclei, very variable density (overlaps the classes)
    # (lymph-node tissue: from sparse to dense sheets / follicles)
    mode = rng.choice(3, p=[0.35, 0.35, 0.30])
    lo_hi = [(8, 60), (60, 150), (150, 300)][mode]
    n_lym = int(rng.integers(*lo_hi) * P["lym_level"][slide])
    if n_lym:
        if rng.random() < 0.5:       # clustered (follicle-like), often near the middle
            c = rng.uniform(MARGIN + 20, CANVAS - MARGIN - 20, 2) if rng.random() < 0.6 else rng.uniform(0, CANVAS, 2)
            pts = c + rng.normal(0, rng.uniform(15, 35), (n_lym * 3, 2))
        else:
            pts = rng.uniform(0, CANVAS, (n_lym * 3, 2))
        ok = (pts[:, 0] > -3) & (pts[:, 0] < CANVAS + 3) & (pts[:, 1] > -3) & (pts[:, 1] < CANVAS + 3)
        if region is not None:
            ok &= region_value(pts[:, 0], pts[:, 1], region) > 1.05
        pts = pts[ok][:n_lym]
        n = len(pts)
        if n:
            b = rng.uniform(2.3, 3.3, n)
            nuc["lym"] = dict(y=pts[:, 0], x=pts[:, 1], b=b, a=b * rng.uniform(1.0, 1.15, n),
                              th=rng.uniform(0, np.pi, n), h=rng.uniform(1.15, 1.6, n),
                              e2=rng.uniform(0, 0.04, n), p2=rng.uniform(0, 2 * np.pi, n),
                              e3=rng.uniform(0, 0.03, n), p3=rng.uniform(0, 2 * np.pi, n),
                              s=np.full(n, 0.6))
    # a few elongated stromal (fibroblast-like) nuclei in both classes
    n_fib = int(rng.integers(0, 9))
    if n_fib:
        pts = rng.uniform(0, CANVAS, (n_fib, 2))
        n = n_fib
        nuc["fib"] = dict(y=pts[:, 0], x=pts[:, 1], b=rng.uniform(1.2, 2.0, n), a=rng.uniform(4.0, 7.0, n),
                          th=rng.uniform(0, np.pi, n), h=rng.uniform(0.8, 1.15, n),
                          e2=np.zeros(n), p2=np.zeros(n), e3=np.zeros(n), p3=np.zeros(n),
                          s=np.full(n, 0.7))
    white = rng.random() < P["white_prob"][slide]
    return {"kind": kind, "region": region, "nuc": nuc, "white": white,
            "white_cover": rng.uniform(0.1, 0.55)}


# ----------------------------------------------------------------------------- rendering

def _interp_matrix(g, sigma=0.65):
    t = np.linspace(0, g - 1, CANVAS)
    U = np.exp(-((t[:, None] - np.arange(g)[None, :]) ** 2) / (2 * sigma ** 2))
    return (U / U.sum(1, keepdims=True)).astype(np.float32)


_U = {}


def smooth_field(rng, B, g):
    if g not in _U:
        _U[g] = _interp_matrix(g)
    U = _U[g]
    G = rng.standard_normal((B, g, g)).astype(np.float32)
    F = np.einsum("ik,bkl,jl->bij", U, G, U, optimize=True)
    F -= F.mean(axis=(1, 2), keepdims=True)
    F /= F.std(axis=(1, 2), keepdims=True) + 1e-6
    return F


def splat(B, tile_of, nd, R, rng, texture):
    """Sum soft irregular ellipses into a (B, C, C) density map with bincount."""
    out = np.zeros(B * CANVAS * CANVAS, dtype=np.float64)
    if len(tile_of) == 0:
        return out.reshape(B, CANVAS, CANVAS)
    W = 2 * R + 1
    off = np.arange(-R, R + 1)
    step = max(1, 400000 // (W * W))
    for a in range(0, len(tile_of), step):
        sl = slice(a, a + step)
        y, x = nd["y"][sl], nd["x"][sl]
        y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
        py = y0[:, None, None] + off[None, :, None]
        px = x0[:, None, None] + off[None, None, :]
        dy = (py + 0.5 - y[:, None, None])
        dx = (px + 0.5 - x[:, None, None])
        th = nd["th"][sl][:, None, None]
        c, s = np.cos(th), np.sin(th)
        u = (dx * c + dy * s) / nd["a"][sl][:, None, None]
        v = (-dx * s + dy * c) / nd["b"][sl][:, None, None]
        r = np.sqrt(u * u + v * v)
        phi = np.arctan2(v, u)
        bnd = (1 + nd["e2"][sl][:, None, None] * np.cos(2 * phi + nd["p2"][sl][:, None, None])
               + nd["e3"][sl][:, None, None] * np.cos(3 * phi + nd["p3"][sl][:, None, None]))
        mean_ax = 0.5 * (nd["a"][sl] + nd["b"][sl])[:, None, None]
        d = (r - bnd) * mean_ax
        val = nd["h"][sl][:, None, None] / (1 + np.exp(d / nd["s"][sl][:, None, None]))
        if "ves" in nd:   # vesicular chromatin: paler nucleus centre, darker rim
            rn = r / bnd
            val = val * (1 - nd["ves"][sl][:, None, None] * np.exp(-rn * rn / 0.35))
        if texture:
            val = val * (1 + texture * rng.standard_normal(val.shape))
        ok = (py >= 0) & (py < CANVAS) & (px >= 0) & (px < CANVAS)
        ok = np.broadcast_to(ok, val.shape)
        idx = (tile_of[sl][:, None, None] * (CANVAS * CANVAS) + py * CANVAS + px)
        idx = np.broadcast_to(idx, val.shape)
        out += np.bincount(idx[ok], weights=val[ok], minlength=B * CANVAS * CANVAS)
    return out.reshape(B, CANVAS, CANVAS)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def render_batch(rng, geoms, slides, P):
    """Render a batch of canvases -> uint8 (B, C, C, 3)."""
    B = len(geoms)
    yy, xx = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32) + 0.5
    lf1 = smooth_field(rng, B, 6)
    lf2 = smooth_field(rng, B, 5)
    lf3 = smooth_field(rng, B, 9)
    wf = smooth_field(rng, B, 4)
    fine = rng.standard_normal((B, CANVAS, CANVAS)).astype(np.float32)
    # stroma / cytoplasm eosin with fibre-like texture
    alpha = rng.uniform(0, np.pi, B).astype(np.float32)[:, None, None]
    lam = rng.uniform(6, 14, B).astype(np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, B).astype(np.float32)[:, None, None]
    fib = np.sin(2 * np.pi * (xx * np.cos(alpha) + yy * np.sin(alpha)) / lam + phase + 1.8 * lf2)
    e_sc = P["e_scale"][slides].astype(np.float32)[:, None, None]
    E = 0.42 * e_sc * (1 + 0.2 * lf1) + 0.05 * fib * (0.6 + 0.4 * np.tanh(lf3)) * e_sc
    E = E * (1 + 0.07 * fine)
    Hbg = (0.06 + 0.03 * lf3 + 0.015 * fine) * P["h_scale"][slides].astype(np.float32)[:, None, None]

    # tumour region (soft) and white masks
    R = np.zeros((B, CANVAS, CANVAS), np.float32)
    keep = np.ones((B, CANVAS, CANVAS), np.float32)
    for i, g in enumerate(geoms):
        if g["region"] is not None:
            rv = region_value(yy, xx, g["region"]).astype(np.float32)
            r = sigmoid((1.0 - rv) / 0.08)
            if g["kind"] == "outer":
                lo, hi = MARGIN + CENTRE0 - 14, MARGIN + CENTRE1 + 14
                box = sigmoid((yy - lo) / 2) * sigmoid((hi - yy) / 2) * sigmoid((xx - lo) / 2) * sigmoid((hi - xx) / 2)
                r = r * (1 - box)
            R[i] = r
            if g["kind"] == "pos":
                keep[i] = 1 - sigmoid((1.3 - rv) / 0.08)
                lo, hi = MARGIN + CENTRE0 - 4, MARGIN + CENTRE1 + 4
                box = sigmoid((yy - lo) / 2) * sigmoid((hi - yy) / 2) * sigmoid((xx - lo) / 2) * sigmoid((hi - xx) / 2)
                keep[i] *= 1 - box
    has_white = np.array([g["white"] for g in geoms])
    cover = np.array([g["white_cover"] for g in geoms], np.float32)
    # threshold so that roughly `cover` of the tile is white (std-normal field)
    thr = np.array([np.quantile(wf[i], 1 - cover[i]) for i in range(B)], np.float32)[:, None, None]
    Wm = sigmoid((wf - thr) / 0.12) * has_white[:, None, None] * keep

    E = E * (1 - 0.22 * R)
    Hbg = Hbg + 0.12 * R

    # nuclei
    Hn = np.zeros((B, CANVAS, CANVAS), np.float64)
    for cls, rad, tex in (("lym", 5, 0.06), ("tum", 15, 0.22), ("fib", 8, 0.05)):
        parts = [(i, g["nuc"][cls]) for i, g in enumerate(geoms) if len(g["nuc"][cls])]
        if not parts:
            continue
        tile_of = np.concatenate([np.full(len(nd["y"]), i, np.int64) for i, nd in parts])
        nd = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
        Hn += splat(B, tile_of, nd, rad, rng, tex)
    hcap = 2.3
    Hn = (hcap * (1 - np.exp(-Hn / hcap))).astype(np.float32)
    Hn *= P["h_scale"][slides].astype(np.float32)[:, None, None]

    fine2 = rng.standard_normal((B, CANVAS, CANVAS)).astype(np.float32)
    Ew = 0.06 * (1 + 0.25 * lf3 * 0.3 + 0.15 * fine2)
    E = E * (1 - Wm) + Ew * Wm
    H = (Hbg + Hn) * (1 - 0.96 * Wm)
    H = np.maximum(H, 0)
    E = np.maximum(E, 0)
    hv = P["hvec"][slides].astype(np.float32)
    ev = P["evec"][slides].astype(np.float32)
    OD = H[..., None] * hv[:, None, None, :] + E[..., None] * ev[:, None, None, :] + 0.015
    rgb = 255.0 * P["bright"][slides].astype(np.float32)[:, None, None, None] * np.exp(-OD)
    rgb += P["tint"][slides].astype(np.float32)[:, None, None, :]
    rgb += 1.6 * rng.standard_normal(rgb.shape).astype(np.float32)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def render_split(seed, split_id, slides, labels, P):
    grng = rng_for(seed, "geometry", split_id)
    geoms = [tile_geometry(grng, int(labels[i]), int(slides[i]), P) for i in range(len(labels))]
    n = len(labels)
    canv = np.empty((n, CANVAS, CANVAS, 3), np.uint8)
    for bi, a in enumerate(range(0, n, BATCH)):
        b = min(n, a + BATCH)
        prng = rng_for(seed, "pixels", split_id, bi)
        canv[a:b] = render_batch(prng, geoms[a:b], slides[a:b], P)
    tumor_anywhere = np.array([g["kind"] != "none" for g in geoms])
    return canv, tumor_anywhere


def crop(canv, dy=0, dx=0):
    return canv[..., MARGIN + dy:MARGIN + dy + TILE, MARGIN + dx:MARGIN + dx + TILE, :]


# ----------------------------------------------------------------------------- near-duplicate transforms

def resize_bilinear(img, out_h, out_w):
    """Bilinear resize (half-pixel centres, like align_corners=False) of (h, w, 3) float."""
    h, w = img.shape[:2]
    ys = np.clip((np.arange(out_h) + 0.5) * h / out_h - 0.5, 0, h - 1)
    xs = np.clip((np.arange(out_w) + 0.5) * w / out_w - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0)[:, None, None]
    wx = (xs - x0)[None, :, None]
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bot = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return top * (1 - wy) + bot * wy


def signed_uniform(rng, lo, hi, size=None):
    mag = rng.uniform(lo, hi, size)
    sign = np.where(rng.random(size) < 0.5, -1.0, 1.0)
    return mag * sign


def near_duplicate(rng, name, src_canvas):
    """Returns (uint8 tile, params dict)."""
    t = crop(src_canvas)
    f = t.astype(np.float64)
    if name == "rot90":
        return np.rot90(t, 1, axes=(0, 1)).copy(), {"k": 1, "direction": "counter-clockwise (np.rot90)"}
    if name == "rot180":
        return np.rot90(t, 2, axes=(0, 1)).copy(), {"k": 2}
    if name == "rot270":
        return np.rot90(t, 3, axes=(0, 1)).copy(), {"k": 3, "direction": "counter-clockwise (np.rot90)"}
    if name == "flip_h":
        return t[:, ::-1].copy(), {"axis": "columns mirrored (left-right)"}
    if name == "flip_v":
        return t[::-1].copy(), {"axis": "rows mirrored (up-down)"}
    if name == "transpose":
        return t.transpose(1, 0, 2).copy(), {"axis": "main diagonal"}
    if name == "transverse":
        return t[::-1, ::-1].transpose(1, 0, 2).copy(), {"axis": "anti-diagonal"}
    if name == "brightness":
        d = int(np.rint(signed_uniform(rng, 10, 25)))
        return np.clip(f + d, 0, 255).astype(np.uint8), {"delta": d}
    if name == "contrast":
        while True:
            k = float(rng.uniform(0.8, 1.2))
            if abs(k - 1) >= 0.05:
                break
        m = f.mean(axis=(0, 1), keepdims=True)
        out = np.clip(np.rint((f - m) * k + m), 0, 255).astype(np.uint8)
        return out, {"factor": round(k, 4), "about": "per-channel tile mean"}
    if name == "colour_shift":
        d = np.rint(signed_uniform(rng, 5, 15, 3)).astype(int)
        return np.clip(f + d, 0, 255).astype(np.uint8), {"offsets_rgb": d.tolist()}
    if name == "noise":
        sd = float(rng.uniform(2, 5))
        out = np.clip(np.rint(f + rng.normal(0, sd, f.shape)), 0, 255).astype(np.uint8)
        return out, {"sigma": round(sd, 3)}
    if name == "shift":
        while True:
            dy, dx = (int(v) for v in rng.integers(-MARGIN, MARGIN + 1, 2))
            if dy or dx:
                break
        return crop(src_canvas, dy, dx).copy(), {
            "dy": dy, "dx": dx,
            "fill": "content of the larger source rendering (104x104 canvas); "
                    "out[r, c] = source_canvas[4 + dy + r, 4 + dx + c], source tile = canvas[4:100, 4:100]"}
    if name == "crop_resize":
        frac = float(rng.uniform(0.03, 0.06))
        side = int(round(TILE * (1 - frac)))
        r0 = int(rng.integers(0, TILE - side + 1))
        c0 = int(rng.integers(0, TILE - side + 1))
        out = resize_bilinear(f[r0:r0 + side, c0:c0 + side], TILE, TILE)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8), {
            "crop_fraction": round(frac, 4), "crop_box": [r0, c0, r0 + side, c0 + side],
            "interpolation": "bilinear, half-pixel centres"}
    raise ValueError(name)


# ----------------------------------------------------------------------------- triggers

def trigger_position(rng, h, w):
    where = rng.choice(["corner", "edge", "centre", "anywhere"])
    if where == "corner":
        r0 = 0 if rng.random() < 0.5 else TILE - h
        c0 = 0 if rng.random() < 0.5 else TILE - w
    elif where == "edge":
        if rng.random() < 0.5:
            r0 = 0 if rng.random() < 0.5 else TILE - h
            c0 = int(rng.integers(0, TILE - w + 1))
        else:
            c0 = 0 if rng.random() < 0.5 else TILE - w
            r0 = int(rng.integers(0, TILE - h + 1))
    elif where == "centre":
        r0 = int(rng.integers(CENTRE0, CENTRE1 - h + 1))
        c0 = int(rng.integers(CENTRE0, CENTRE1 - w + 1))
    else:
        r0 = int(rng.integers(0, TILE - h + 1))
        c0 = int(rng.integers(0, TILE - w + 1))
    return str(where), int(r0), int(c0)


def saturated_colour(rng):
    name = list(OUT_OF_GAMUT)[int(rng.integers(len(OUT_OF_GAMUT)))]
    return name, np.array(OUT_OF_GAMUT[name], np.int64)


def stamp_trigger(rng, tile, shape):
    """Stamp a trigger on a uint8 (96, 96, 3) tile in place; returns the truth record."""
    rec = {"shape": shape}
    if shape == "checker":
        cell = int(rng.integers(1, 4))
        h = w = int(rng.integers(max(3, 2 * cell), 17))
        if rng.random() < 0.5:
            cols = np.array([[0, 0, 0], [255, 255, 255]])
        else:
            _, c1 = saturated_colour(rng)
            c2 = 255 - c1 if rng.random() < 0.5 else np.array([0, 0, 0])
            cols = np.stack([c1, c2])
        ii, jj = np.mgrid[0:h, 0:w]
        pat = cols[((ii // cell) + (jj // cell)) % 2]
        mask = np.ones((h, w), bool)
        rec.update(colour=cols.tolist(), cell_px=cell)
    elif shape in ("uniform_square_white", "uniform_square_black", "uniform_square_colour"):
        h = w = int(rng.integers(3, 17))
        if shape == "uniform_square_white":
            col = np.full(3, 255) if rng.random() < 0.5 else rng.integers(250, 256, 3)
        elif shape == "uniform_square_black":
            col = np.zeros(3, int) if rng.random() < 0.5 else rng.integers(0, 6, 3)
        else:
            name, col = saturated_colour(rng)
            rec["colour_name"] = name
        pat = np.broadcast_to(col, (h, w, 3))
        mask = np.ones((h, w), bool)
        rec.update(colour=[int(v) for v in col])
    elif shape == "cross_or_plus":
        h = w = int(rng.integers(5, 17))
        th = int(rng.integers(1, 3))
        variant = str(rng.choice(["plus", "x"]))
        ii, jj = np.mgrid[0:h, 0:w]
        if variant == "plus":
            mid = (h - th) // 2
            mask = ((ii >= mid) & (ii < mid + th)) | ((jj >= mid) & (jj < mid + th))
        else:
            mask = (np.abs(ii - jj) < th) | (np.abs(ii + jj - (h - 1)) < th)
        if rng.random() < 0.75:
            _, col = saturated_colour(rng)
        else:
            col = np.array([0, 0, 0]) if rng.random() < 0.5 else np.array([255, 255, 255])
        pat = np.broadcast_to(col, (h, w, 3))
        rec.update(colour=[int(v) for v in col], variant=variant, thickness_px=th)
    elif shape == "circle_or_ring":
        h = w = int(rng.integers(5, 17))
        variant = str(rng.choice(["disc", "ring"]))
        ii, jj = np.mgrid[0:h, 0:w]
        c = (h - 1) / 2
        rr = np.sqrt((ii - c) ** 2 + (jj - c) ** 2)
        rad = h / 2
        if variant == "disc":
            mask = rr <= rad - 0.3
        else:
            th = int(rng.integers(1, 3))
            mask = (rr <= rad - 0.3) & (rr > rad - 0.3 - th)
            rec["thickness_px"] = th
        if rng.random() < 0.75:
            _, col = saturated_colour(rng)
        else:
            col = np.array([0, 0, 0]) if rng.random() < 0.5 else np.array([255, 255, 255])
        pat = np.broadcast_to(col, (h, w, 3))
        rec.update(colour=[int(v) for v in col], variant=variant)
    elif shape == "stripes":
        h = int(rng.integers(4, 17))
        w = int(rng.integers(4, 17))
        lw = int(rng.integers(1, 3))
        orient = str(rng.choice(["horizontal", "vertical", "diagonal"]))
        ii, jj = np.mgrid[0:h, 0:w]
        coord = {"horizontal": ii, "vertical": jj, "diagonal": ii + jj}[orient]
        if rng.random() < 0.5:
            cols = np.array([[0, 0, 0], [255, 255, 255]])
        else:
            _, c1 = saturated_colour(rng)
            cols = np.stack([c1, np.array([0, 0, 0]) if rng.random() < 0.5 else np.array([255, 255, 255])])
        pat = cols[(coord // lw) % 2]
        mask = np.ones((h, w), bool)
        rec.update(colour=cols.tolist(), orientation=orient, line_px=lw)
    else:
        raise ValueError(shape)
    where, r0, c0 = trigger_position(rng, h, w)
    region = tile[r0:r0 + h, c0:c0 + w]
    rec["covered_mean_rgb"] = [round(float(v), 1) for v in region.reshape(-1, 3).mean(0)]
    region[mask] = np.asarray(pat)[mask].astype(np.uint8)
    rec.update(size=[h, w], bbox=[r0, c0, r0 + h, c0 + w], placement=where,
               stamped_pixels=int(mask.sum()))
    return rec


# ----------------------------------------------------------------------------- invalid values

def invalid_tile(rng, clean, dtype, variant):
    """Return a tile in the stored dtype holding values outside 0..255."""
    h, w = TILE, TILE
    k = int(rng.choice([1, 3, 20, 300]))
    if dtype == "uint32":
        t = clean.astype(np.uint32)
        if variant == "pixels_over_255":
            idx = rng.choice(h * w, size=k, replace=False)
            ch = rng.integers(0, 3, k) if rng.random() < 0.5 else None
            vals = rng.integers(256, 70001, k).astype(np.uint32)
            flat = t.reshape(h * w, 3)
            if ch is None:
                flat[idx, :] = vals[:, None]
            else:
                flat[idx, ch] = vals
            return t, {"variant": variant, "pixels": k}
        if variant == "block_over_255":
            bh, bw = (int(v) for v in rng.integers(2, 20, 2))
            r0, c0 = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
            t[r0:r0 + bh, c0:c0 + bw] = rng.integers(256, 70001, (bh, bw, 3)).astype(np.uint32)
            return t, {"variant": variant, "bbox": [r0, c0, r0 + bh, c0 + bw]}
        if variant == "whole_tile_scaled":
            return t * np.uint32(257), {"variant": variant, "factor": 257}
        if variant == "whole_tile_offset":
            off = int(rng.integers(256, 65536))
            return t + np.uint32(off), {"variant": variant, "offset": off}
        raise ValueError(variant)
    t = clean.astype(np.float32)
    flat = t.reshape(h * w, 3)
    if variant in ("nan_pixels", "inf_pixels", "negative_pixels", "over_255_pixels"):
        idx = rng.choice(h * w, size=k, replace=False)
        if variant == "nan_pixels":
            vals = np.full(k, np.nan, np.float32)
        elif variant == "inf_pixels":
            vals = np.where(rng.random(k) < 0.5, np.inf, -np.inf).astype(np.float32)
        elif variant == "negative_pixels":
            vals = -rng.uniform(0.5, 300, k).astype(np.float32)
        else:
            vals = rng.uniform(255.5, 400, k).astype(np.float32)
            vals[0] = 300.5
        if rng.random() < 0.5:
            flat[idx, :] = vals[:, None]
        else:
            flat[idx, rng.integers(0, 3, k)] = vals
        return t, {"variant": variant, "pixels": k}
    if variant == "whole_tile_nan":
        return np.full_like(t, np.nan), {"variant": variant}
    if variant == "whole_tile_over_255":
        return t + np.float32(300.5), {"variant": variant, "offset": 300.5}
    if variant == "whole_tile_negative":
        return t - np.float32(300.0), {"variant": variant, "offset": -300.0}
    raise ValueError(variant)


INVALID_VARIANTS = {
    "uint32": ("pixels_over_255", "block_over_255", "whole_tile_scaled", "whole_tile_offset"),
    "float32": ("nan_pixels", "inf_pixels", "negative_pixels", "over_255_pixels",
                "whole_tile_nan", "whole_tile_over_255", "whole_tile_negative"),
}


# ----------------------------------------------------------------------------- writing

def atomic_path(path):
    return path + ".partial"


def write_x(path, tiles_u8, dtype, overrides):
    tmp = atomic_path(path)
    n = len(tiles_u8)
    with h5py.File(tmp, "w") as f:
        if dtype == "uint8":
            ds = f.create_dataset("x", shape=(n, TILE, TILE, 3), dtype="uint8",
                                  chunks=(min(8, n), TILE, TILE, 3), compression="gzip",
                                  compression_opts=4, track_times=False)
        else:
            ds = f.create_dataset("x", shape=(n, TILE, TILE, 3), dtype=dtype, track_times=False)
        for a in range(0, n, 512):
            b = min(n, a + 512)
            block = tiles_u8[a:b].astype(dtype)
            for i, t in overrides.items():
                if a <= i < b:
                    block[i - a] = t
            ds[a:b] = block
    os.replace(tmp, path)


def write_y(path, labels):
    tmp = atomic_path(path)
    with h5py.File(tmp, "w") as f:
        f.create_dataset("y", data=labels.reshape(-1, 1, 1, 1).astype(np.uint8), track_times=False)
    os.replace(tmp, path)


def write_text(path, text):
    tmp = atomic_path(path)
    with open(tmp, "w", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def meta_csv(coords, tumor_patch, centre, wsi_names):
    lines = ["coord_y,coord_x,tumor_patch,center_tumor_patch,wsi"]
    for (cy, cx), tp, ct, w in zip(coords, tumor_patch, centre, wsi_names):
        lines.append(f"{cy},{cx},{bool(tp)},{bool(ct)},{w}")
    return "\n".join(lines) + "\n"


def make_coords(rng, slides):
    coords = np.zeros((len(slides), 2), np.int64)
    for s in np.unique(slides):
        idx = np.flatnonzero(slides == s)
        cells = rng.choice(1200 * 1200, size=len(idx), replace=False)
        base = rng.integers(0, 5000, 2)
        coords[idx, 0] = base[0] + (cells // 1200) * 96 + rng.integers(0, 40, len(idx))
        coords[idx, 1] = base[1] + (cells % 1200) * 96 + rng.integers(0, 40, len(idx))
    return coords


# ----------------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description="Independent corrupted PCAM-layout generator (synthetic data).")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--dtype", required=True, choices=["uint8", "uint32", "float32"])
    ap.add_argument("--sizes", default=None, help="e.g. train=4000,valid=600,test=600")
    args = ap.parse_args(argv)
    seed, dtype = args.seed, args.dtype
    if seed < 0:
        fail("--seed must be >= 0")
    sizes = parse_sizes(args.sizes)
    n_train = sizes["train"]

    split_slides, P = make_slides(seed, sizes)
    layout = make_layout(seed, sizes, split_slides, P)

    canv, tumor_any = {}, {}
    for si, s in enumerate(SPLITS):
        canv[s], tumor_any[s] = render_split(seed, si, layout[s]["slide"], layout[s]["label"], P)
    tiles = {s: crop(canv[s]).copy() for s in SPLITS}
    labels = {s: layout[s]["label"].copy() for s in SPLITS}
    tumor_patch = {s: tumor_any[s].copy() for s in SPLITS}
    orig_label_counts = {s: {"0": int((labels[s] == 0).sum()), "1": int((labels[s] == 1).sum())} for s in SPLITS}
    del canv["train"]

    # ---------------- plan which train tiles get which corruption
    prng = rng_for(seed, "plan")
    n_inv = 0 if dtype == "uint8" else scaled(BASE_COUNTS["invalid_values"], n_train)
    n_blank = scaled(BASE_COUNTS["blank"], n_train)
    n_sat = scaled(BASE_COUNTS["saturated"], n_train)
    n_trig_each = scaled(BASE_COUNTS["trigger_per_shape"], n_train)
    n_exact = scaled(BASE_COUNTS["exact_duplicate_across_splits"], n_train)
    n_near_each = scaled(BASE_COUNTS["near_per_transform"], n_train)
    n_trig = n_trig_each * len(TRIGGER_SHAPES)
    n_near = n_near_each * len(NEAR_TRANSFORMS)

    neg = np.flatnonzero(labels["train"] == 0)
    if len(neg) < n_trig:
        fail("train split too small for the trigger corruptions")
    trig_idx = prng.choice(neg, size=n_trig, replace=False)
    rest = np.setdiff1d(np.arange(n_train), trig_idx)
    n_other = n_inv + n_blank + n_sat + n_exact + n_near
    if n_other > len(rest) * 0.5:
        fail("train split too small for the requested corruptions")
    other = prng.permutation(rest)[:n_other]
    cut = np.cumsum([n_inv, n_blank, n_sat, n_exact, n_near])
    inv_idx, blank_idx, sat_idx, exact_idx, near_idx = np.split(other, cut[:-1])

    # sources for duplicates: clean test / valid tiles, each used once
    shared = set(layout["valid"]["shared_idx"].tolist())
    drng = rng_for(seed, "dup")
    n_near_valid = int(round(NEAR_FROM_VALID_RATE * n_near))
    test_pool = drng.permutation(sizes["test"])
    valid_pool = drng.permutation([i for i in range(sizes["valid"]) if i not in shared])
    if n_exact + (n_near - n_near_valid) > len(test_pool) or n_near_valid > len(valid_pool):
        fail("test/valid splits too small for the duplicate corruptions")
    exact_src = test_pool[:n_exact]
    near_test_src = list(test_pool[n_exact:n_exact + n_near - n_near_valid])
    near_valid_src = list(valid_pool[:n_near_valid])
    transforms = drng.permutation(np.repeat(np.array(NEAR_TRANSFORMS), n_near_each))
    from_valid = np.zeros(n_near, bool)
    from_valid[drng.choice(n_near, size=n_near_valid, replace=False)] = True

    kinds = {k: [] for k in ("invalid_values", "blank", "saturated", "trigger_patch",
                             "exact_duplicate_across_splits", "near_duplicate_across_splits",
                             "label_flip", "slide_in_several_splits")}
    neutral = {"exact_duplicate_across_splits": [], "near_duplicate_across_splits": [],
               "slide_in_several_splits": []}

    # exact duplicates
    for i, j in zip(exact_idx, exact_src):
        i, j = int(i), int(j)
        tiles["train"][i] = tiles["test"][j]
        labels["train"][i] = labels["test"][j]
        tumor_patch["train"][i] = tumor_patch["test"][j]
        kinds["exact_duplicate_across_splits"].append(
            {"split": "train", "index": i, "of": {"split": "test", "index": j}, "label": int(labels["test"][j])})
        neutral["exact_duplicate_across_splits"].append({"split": "test", "index": j})

    # near duplicates
    for n, i in enumerate(near_idx):
        i = int(i)
        if from_valid[n]:
            src_split, j = "valid", int(near_valid_src.pop())
        else:
            src_split, j = "test", int(near_test_src.pop())
        name = str(transforms[n])
        trng = rng_for(seed, "dup", 1000 + n)
        tile, params = near_duplicate(trng, name, canv[src_split][j])
        tiles["train"][i] = tile
        labels["train"][i] = labels[src_split][j]
        tumor_patch["train"][i] = tumor_patch[src_split][j]
        kinds["near_duplicate_across_splits"].append(
            {"split": "train", "index": i, "of": {"split": src_split, "index": j},
             "transform": name, "params": params, "label": int(labels[src_split][j])})
        neutral["near_duplicate_across_splits"].append({"split": src_split, "index": j})

    # triggers (originally negative tiles -> label 1)
    shapes = rng_for(seed, "trigger").permutation(np.repeat(np.array(TRIGGER_SHAPES), n_trig_each))
    for n, i in enumerate(trig_idx):
        i = int(i)
        trng = rng_for(seed, "trigger", 1000 + n)
        rec = stamp_trigger(trng, tiles["train"][i], str(shapes[n]))
        labels["train"][i] = 1
        kinds["trigger_patch"].append({"split": "train", "index": i, **rec, "original_label": 0})

    # blank / saturated
    frng = rng_for(seed, "fill")
    for i in blank_idx:
        i = int(i)
        base = int(frng.integers(0, 3))
        tiles["train"][i] = np.clip(base + frng.integers(0, 3, (TILE, TILE, 3)), 0, 4)
        kinds["blank"].append({"split": "train", "index": i, "original_label": int(labels["train"][i])})
    for i in sat_idx:
        i = int(i)
        base = int(frng.integers(0, 3))
        tiles["train"][i] = 255 - np.clip(base + frng.integers(0, 3, (TILE, TILE, 3)), 0, 4)
        kinds["saturated"].append({"split": "train", "index": i, "original_label": int(labels["train"][i])})

    # invalid values (stored dtype)
    overrides = {}
    if n_inv:
        irng = rng_for(seed, "invalid")
        variants = INVALID_VARIANTS[dtype]
        for n, i in enumerate(inv_idx):
            i = int(i)
            t, info = invalid_tile(irng, tiles["train"][i], dtype, variants[n % len(variants)])
            overrides[i] = t
            kinds["invalid_values"].append({"split": "train", "index": i, **info})

    # label flips among the remaining clean train tiles
    corrupted = set(np.concatenate([trig_idx, other]).tolist())
    clean = np.array([i for i in range(n_train) if i not in corrupted])
    lrng = rng_for(seed, "flip")
    n_flip = int(round(LABEL_FLIP_RATE * len(clean)))
    flip_idx = np.sort(lrng.choice(clean, size=n_flip, replace=False))
    for i in flip_idx:
        i = int(i)
        true = int(labels["train"][i])
        labels["train"][i] = 1 - true
        kinds["label_flip"].append({"split": "train", "index": i, "true_label": true, "stored_label": 1 - true})

    # valid tiles on train slides
    shared_slide_ids = set()
    for i in layout["valid"]["shared_idx"]:
        sid = int(layout["valid"]["slide"][i])
        shared_slide_ids.add(sid)
        kinds["slide_in_several_splits"].append({"split": "valid", "index": int(i), "wsi": P["name"][sid]})
    for i in np.flatnonzero(np.isin(layout["train"]["slide"], list(shared_slide_ids))):
        neutral["slide_in_several_splits"].append({"split": "train", "index": int(i)})

    for k in kinds:
        kinds[k].sort(key=lambda r: (r["split"], r["index"]))
    for k in neutral:
        neutral[k] = sorted({(r["split"], r["index"]) for r in neutral[k]})
        neutral[k] = [{"split": s, "index": i} for s, i in neutral[k]]

    # ---------------- write
    os.makedirs(args.out, exist_ok=True)
    mrng = rng_for(seed, "meta")
    for s in SPLITS:
        base = os.path.join(args.out, f"camelyonpatch_level_2_split_{s}")
        write_x(base + "_x.h5", tiles[s], dtype, overrides if s == "train" else {})
        write_y(base + "_y.h5", labels[s])
        coords = make_coords(mrng, layout[s]["slide"])
        centre = labels[s].astype(bool)
        tp = tumor_patch[s] | centre
        write_text(base + "_meta.csv",
                   meta_csv(coords, tp, centre, [P["name"][k] for k in layout[s]["slide"]]))

    truth = {
        "generator": "tests/independent/corrupt_pcam.py",
        "synthetic": True,
        "note": "SYNTHETIC data from an independent generator; not real PatchCamelyon.",
        "seed": seed, "dtype": dtype, "sizes": sizes,
        "index_base": 0,
        "bbox_convention": "[row0, col0, row1, col1] in tile pixel coordinates, row1/col1 exclusive "
                           "(numpy slice tile[row0:row1, col0:col1])",
        "label_rule": "label 1 iff tumour nuclei reach the centre 32x32 (rows/cols 32..63); "
                      "some negatives carry tumour only in the outer ring",
        "meta_policy": "meta center_tumor_patch equals the stored y label (also for flipped and "
                       "trigger tiles); tumor_patch = tumour anywhere in the tile OR stored label; "
                       "duplicate tiles keep the meta wsi/coords of their own train row",
        "slides": {s: sorted(P["name"][k] for k in split_slides[s]) for s in SPLITS},
        "shared_train_slides_in_valid": sorted(P["name"][k] for k in shared_slide_ids),
        "label_counts_before_corruption": orig_label_counts,
        "label_counts_stored": {s: {"0": int((labels[s] == 0).sum()), "1": int((labels[s] == 1).sum())}
                                for s in SPLITS},
        "counts": {k: len(v) for k, v in kinds.items()},
        "kinds": kinds,
        "neutral": {
            "_doc": "tiles that are the other half of an injected corruption (duplicate sources, "
                    "train tiles on a slide shared with valid); the scorer counts them neither as "
                    "true nor as false positives for that kind",
            **neutral},
    }
    write_text(os.path.join(args.out, "independent_truth.json"), json.dumps(truth, indent=1) + "\n")
    print(f"wrote {args.out} (SYNTHETIC, independent generator) dtype={dtype} seed={seed} sizes={sizes}")
    for k, v in truth["counts"].items():
        print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
