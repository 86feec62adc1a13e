//! Normalisations: `BatchNormalization` (as featx's `BatchNorm2d` on feature maps, so it folds
//! into the convolution before it), `LayerNormalization` over the last axis,
//! `InstanceNormalization` and `GroupNormalization` (featx's `GroupNorm`).

use burn::module::{Param, RunningState};
use burn::nn::{BatchNormConfig, LayerNormConfig};
use featx_graph::Layer;
use featx_graph::ops::{Add, BatchNorm2d, GroupNorm, LayerNorm, Mul};

use super::{Rule, axis, one};
use crate::constant::Const;
use crate::error::Result;
use crate::import::{Call, Importer, Val};

#[rustfmt::skip]
pub const RULES: &[Rule] = &[
    Rule { op: "BatchNormalization", fold: None, import: Some(batch_norm) },
    Rule { op: "LayerNormalization", fold: None, import: Some(layer_norm) },
    Rule { op: "InstanceNormalization", fold: None, import: Some(group_norm) },
    Rule { op: "GroupNormalization", fold: None, import: Some(group_norm) },
];

/// Constant input `i` as `n` floats.
fn vector(call: &Call, i: usize, n: usize) -> Result<Vec<f32>> {
    let c = call.constant(i)?;
    if c.len() != n {
        return Err(call.err(format!(
            "input {i} has shape {:?}, expected {n} values",
            c.shape
        )));
    }
    Ok(c.as_floats())
}

fn batch_norm(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    if call.attrs.int("training_mode", 0) != 0 {
        return Err(call.err("training_mode BatchNormalization is not supported"));
    }
    let shape = im.shape(call.input(0)?);
    let c = *shape
        .get(1)
        .ok_or_else(|| call.err("input without channels"))?;
    let eps = call.attrs.float("epsilon", 1e-5);
    let [gamma, beta, mean, var] = [1, 2, 3, 4].map(|i| vector(call, i, c));
    let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
    let x = im.input_node(call, 0)?;
    if shape.len() == 4 {
        let mut bn = BatchNormConfig::new(c)
            .with_epsilon(f64::from(eps))
            .init(&im.device);
        bn.gamma = Param::from_tensor(im.tensor(gamma, [c]));
        bn.beta = Param::from_tensor(im.tensor(beta, [c]));
        bn.running_mean = RunningState::new(im.tensor(mean, [c]));
        bn.running_var = RunningState::new(im.tensor(var, [c]));
        let op = BatchNorm2d::of(&bn);
        return one(Val::Node(im.emit(
            call.naming(0),
            op,
            &[x],
            Some(Layer::BatchNorm(bn)),
        )?));
    }
    // Other ranks (BatchNorm1d): the same affine map, `x * scale + shift`, per channel.
    let scale: Vec<f32> = (0..c).map(|k| gamma[k] / (var[k] + eps).sqrt()).collect();
    let shift: Vec<f32> = (0..c).map(|k| beta[k] - mean[k] * scale[k]).collect();
    let mut per_channel = vec![1; shape.len() - 1];
    per_channel[0] = c;
    let s = im.node_of(
        &Val::Const(Const::floats(per_channel.clone(), scale)),
        &format!("{}/scale", call.name),
    )?;
    let t = im.node_of(
        &Val::Const(Const::floats(per_channel, shift)),
        &format!("{}/shift", call.name),
    )?;
    let scaled = im.emit(call.helper("scaled"), Mul, &[x, s], None)?;
    one(Val::Node(im.emit(
        call.naming(0),
        Add,
        &[scaled, t],
        None,
    )?))
}

fn layer_norm(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let shape = im.shape(call.input(0)?);
    let a = axis(call, call.attrs.int("axis", -1), shape.len())?;
    if a + 1 != shape.len() {
        return Err(call.err("normalising over more than the last axis is not supported"));
    }
    let d = shape[a];
    let eps = call.attrs.float("epsilon", 1e-5);
    let mut norm = LayerNormConfig::new(d)
        .with_epsilon(f64::from(eps))
        .init(&im.device);
    norm.gamma = Param::from_tensor(im.tensor(vector(call, 1, d)?, [d]));
    norm.beta = match call.opt(2) {
        Some(_) => Some(Param::from_tensor(im.tensor(vector(call, 2, d)?, [d]))),
        None => None,
    };
    let op = LayerNorm {
        features: d,
        eps: f64::from(eps),
    };
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(
        call.naming(0),
        op,
        &[x],
        Some(Layer::LayerNorm(norm)),
    )?))
}

/// `InstanceNormalization` is a group normalisation with one channel per group.
fn group_norm(im: &mut Importer, call: &Call) -> Result<Vec<Val>> {
    let shape = im.shape(call.input(0)?);
    let c = *shape
        .get(1)
        .ok_or_else(|| call.err("input without channels"))?;
    let groups = match call.node.op_type.as_str() {
        "InstanceNormalization" => c,
        _ => call.attrs.int("num_groups", 0).max(0) as usize,
    };
    if groups == 0 || c % groups != 0 {
        return Err(call.err(format!("{c} channels do not split into {groups} groups")));
    }
    let per_channel = |i: usize| -> Result<Vec<f32>> {
        let v = call.constant(i)?.as_floats();
        match v.len() {
            // Opset 18's GroupNormalization has one scale per group.
            n if n == groups && n != c => Ok((0..c).map(|k| v[k / (c / groups)]).collect()),
            n if n == c => Ok(v),
            _ => Err(call.err(format!("input {i} has {} values for {c} channels", v.len()))),
        }
    };
    let eps = f64::from(call.attrs.float("epsilon", 1e-5));
    let norm = burn::nn::GroupNorm {
        gamma: Some(Param::from_tensor(im.tensor(per_channel(1)?, [c]))),
        beta: Some(Param::from_tensor(im.tensor(per_channel(2)?, [c]))),
        num_groups: groups,
        num_channels: c,
        epsilon: eps,
        affine: true,
    };
    let op = GroupNorm {
        groups,
        channels: c,
        epsilon: eps,
    };
    let x = im.input_node(call, 0)?;
    one(Val::Node(im.emit(
        call.naming(0),
        op,
        &[x],
        Some(Layer::GroupNorm(norm)),
    )?))
}
