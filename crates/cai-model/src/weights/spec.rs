//! The tensors a configuration expects, and the check of a checkpoint against them.

use super::RawWeights;
use crate::config::{AstroMaeConfig, BlockVariant, INCEPTION_SLOTS};
use std::collections::BTreeSet;
use std::fmt;

/// How the forward pass uses an expected tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Needed by the forward pass: must be present with this shape.
    Used,
    /// In the checkpoint but not used by the forward pass (the last Inception block's
    /// 5x5 branch); its absence is fine.
    Unused,
}

/// One tensor the architecture defines.
#[derive(Clone, Debug)]
pub struct TensorSpec {
    /// Checkpoint name (without any `module.` prefix).
    pub name: String,
    /// Expected shape.
    pub shape: Vec<usize>,
    /// Whether the forward pass reads it.
    pub role: Role,
    /// Whether it is a trainable parameter (BatchNorm running statistics are not).
    pub parameter: bool,
}

/// Lists every tensor of the architecture, in checkpoint order.
pub fn expected_tensors(c: &AstroMaeConfig) -> Vec<TensorSpec> {
    let mut v = Specs::default();
    let (d, p) = (c.embed_dim, c.patch_size);
    v.param("patch_embed.proj.weight", &[d, c.in_chans, p, p]);
    v.param("patch_embed.proj.bias", &[d]);
    v.param("cls_token", &[1, 1, d]);
    v.param("pos_embed", &[1, c.num_patches() + 1, d]);
    for i in 0..c.depth {
        let b = format!("blocks.{i}");
        v.layer_norm(&format!("{b}.norm1"), d);
        v.param(&format!("{b}.attn.qkv.weight"), &[3 * d, d]);
        match c.block {
            BlockVariant::Vitae {
                pcm_hidden,
                pcm_groups_in,
                pcm_groups_out,
            } => {
                v.param(&format!("{b}.attn.q_bias"), &[d]);
                v.param(&format!("{b}.attn.v_bias"), &[d]);
                v.conv(
                    &format!("{b}.PCM.0"),
                    pcm_hidden,
                    d / pcm_groups_in.max(1),
                    1,
                    true,
                    Role::Used,
                );
                v.batch_norm(&format!("{b}.PCM.1"), pcm_hidden, Role::Used);
                v.conv(
                    &format!("{b}.PCM.3"),
                    d,
                    pcm_hidden / pcm_groups_out.max(1),
                    1,
                    true,
                    Role::Used,
                );
            }
            BlockVariant::Plain => v.param(&format!("{b}.attn.qkv.bias"), &[3 * d]),
        }
        v.linear(&format!("{b}.attn.proj"), d, d);
        v.layer_norm(&format!("{b}.norm2"), d);
        v.linear(&format!("{b}.mlp.fc1"), d, c.mlp_hidden);
        v.linear(&format!("{b}.mlp.fc2"), c.mlp_hidden, d);
    }
    v.layer_norm("fc_norm", d);
    v.linear("head", d, c.head_out);
    v.linear("vit_block.0", c.head_out, c.vit_hidden);
    v.linear("vit_block.2", c.vit_hidden, c.vit_hidden);

    v.conv(
        "inception_model.conv2d_init",
        c.inception_stem,
        c.in_chans,
        1,
        true,
        Role::Used,
    );
    for (slot, b) in INCEPTION_SLOTS.iter().zip(&c.inception) {
        let p = format!("inception_model.vis_inception.{slot}");
        v.conv_block(&format!("{p}.branch1"), b.b1, b.cin, 1, Role::Used);
        v.conv_block(&format!("{p}.branch2.0"), b.b2_reduce, b.cin, 1, Role::Used);
        v.conv_block(&format!("{p}.branch2.1"), b.b2, b.b2_reduce, 3, Role::Used);
        let b3 = if b.uses_b3 { Role::Used } else { Role::Unused };
        v.conv_block(&format!("{p}.branch3.0"), b.b3_reduce, b.cin, 1, b3);
        v.conv_block(&format!("{p}.branch3.1"), b.b3, b.b3_reduce, 5, b3);
        v.conv_block(&format!("{p}.branch4.1"), b.b4, b.cin, 1, Role::Used);
    }
    let side = c.inception_final_side();
    let flat = c.inception[4].out_channels() * side * side;
    v.linear("inception_model.vis_inception.10", flat, c.inception_hidden);
    v.linear(
        "inception_model.vis_inception.12",
        c.inception_hidden,
        c.inception_hidden,
    );
    let mut width = c.mag_in;
    for (i, &out) in c.mag_layers.iter().enumerate() {
        v.linear(
            &format!("inception_model.magnitude_block.{}", 2 * i),
            width,
            out,
        );
        width = out;
    }
    let concat_in = c.vit_hidden + c.inception_hidden + width;
    v.linear("concat_block.0", concat_in, c.concat_hidden);
    v.linear("concat_block.2", c.concat_hidden, 1);
    v.0
}

/// Number of trainable parameters of a configuration (15,902,889 for the published model).
pub fn parameter_count(c: &AstroMaeConfig) -> usize {
    expected_tensors(c)
        .iter()
        .filter(|t| t.parameter)
        .map(|t| t.shape.iter().product::<usize>())
        .sum()
}

#[derive(Default)]
struct Specs(Vec<TensorSpec>);

impl Specs {
    fn push(&mut self, name: &str, shape: &[usize], role: Role, parameter: bool) {
        self.0.push(TensorSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
            role,
            parameter,
        });
    }
    fn param(&mut self, name: &str, shape: &[usize]) {
        self.push(name, shape, Role::Used, true);
    }
    fn linear(&mut self, p: &str, din: usize, dout: usize) {
        self.param(&format!("{p}.weight"), &[dout, din]);
        self.param(&format!("{p}.bias"), &[dout]);
    }
    fn layer_norm(&mut self, p: &str, d: usize) {
        self.param(&format!("{p}.weight"), &[d]);
        self.param(&format!("{p}.bias"), &[d]);
    }
    fn conv(
        &mut self,
        p: &str,
        cout: usize,
        cin_per_group: usize,
        k: usize,
        bias: bool,
        role: Role,
    ) {
        self.push(
            &format!("{p}.weight"),
            &[cout, cin_per_group, k, k],
            role,
            true,
        );
        if bias {
            self.push(&format!("{p}.bias"), &[cout], role, true);
        }
    }
    fn batch_norm(&mut self, p: &str, c: usize, role: Role) {
        self.push(&format!("{p}.weight"), &[c], role, true);
        self.push(&format!("{p}.bias"), &[c], role, true);
        self.push(&format!("{p}.running_mean"), &[c], role, false);
        self.push(&format!("{p}.running_var"), &[c], role, false);
    }
    fn conv_block(&mut self, p: &str, cout: usize, cin: usize, k: usize, role: Role) {
        self.conv(&format!("{p}.conv"), cout, cin, k, true, role);
        self.batch_norm(&format!("{p}.bn"), cout, role);
    }
}

/// A tensor that is missing or has the wrong shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Checkpoint name.
    pub name: String,
    /// Shape the architecture needs.
    pub expected: Vec<usize>,
    /// Shape in the file, `None` when absent.
    pub found: Option<Vec<usize>>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.found {
            None => write!(
                f,
                "{}: missing (expected shape {:?})",
                self.name, self.expected
            ),
            Some(s) => write!(
                f,
                "{}: expected shape {:?}, found {:?}",
                self.name, self.expected, s
            ),
        }
    }
}

/// Outcome of checking a checkpoint against the architecture.
#[derive(Clone, Debug, Default)]
pub struct Validation {
    /// Missing or mis-shaped tensors the forward pass needs (an error when non-empty).
    pub mismatches: Vec<Mismatch>,
    /// Names in the file that the architecture does not know (a warning).
    pub unexpected: Vec<String>,
}

/// Names a checkpoint may carry that are neither needed nor worth a warning.
fn known_extra(name: &str) -> bool {
    name.ends_with(".num_batches_tracked")
        // Index 0 of the Inception Sequential is the same module as `conv2d_init`.
        || name.starts_with("inception_model.vis_inception.0.")
        // The encoder's own final norm: the fine-tune head uses `fc_norm` instead.
        || name == "norm.weight"
        || name == "norm.bias"
}

/// Compares a checkpoint with the tensors the architecture expects.
pub fn validate(w: &RawWeights, c: &AstroMaeConfig) -> Validation {
    let specs = expected_tensors(c);
    let mut out = Validation::default();
    let mut known = BTreeSet::new();
    for s in &specs {
        known.insert(s.name.as_str());
        let found = w.shape(&s.name);
        if found == Some(s.shape.as_slice()) {
            continue;
        }
        // Unused tensors may be absent, but if present they must not contradict the layout.
        if s.role == Role::Unused && found.is_none() {
            continue;
        }
        out.mismatches.push(Mismatch {
            name: s.name.clone(),
            expected: s.shape.clone(),
            found: found.map(<[usize]>::to_vec),
        });
    }
    out.unexpected = w
        .tensors
        .keys()
        .filter(|k| !known.contains(k.as_str()) && !known_extra(k))
        .cloned()
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_model_has_the_documented_parameter_count() {
        assert_eq!(parameter_count(&AstroMaeConfig::published()), 15_902_889);
        let plain = AstroMaeConfig {
            block: BlockVariant::Plain,
            ..AstroMaeConfig::published()
        };
        assert_eq!(parameter_count(&plain), 15_801_513);
    }
}
