//! What a recurrent core is made of: every option is a config value, never a code edit.
use serde::{Deserialize, Serialize};

config_option! {
    /// The cell a core is built on, with or without plastic recurrent weights.
    pub enum CoreKind {
        /// `h_t = tanh(W_in x_t + b + W h_{t−1})`.
        Rnn = "rnn",
        /// `h_t = tanh(W_in x_t + b + (W + α ⊙ Hebb) h_{t−1})`.
        #[default]
        PlasticRnn = "plastic-rnn",
        /// Standard LSTM (gates i, f, g, o).
        Lstm = "lstm",
        /// LSTM whose recurrent weights into the cell candidate `g` have a plastic part.
        PlasticLstm = "plastic-lstm",
        /// Short-term plasticity neurons (Rodriguez, Guo & Moraitis, ICML 2022): every
        /// synapse, input and recurrent, has a fixed weight and a fast weight `F` with its own
        /// learned decay λ and gain γ, `F_t = λ ⊙ F_{t−1} + γ ⊙ (h_t ⊗ [x_t, h_{t−1}])`, clipped
        /// at ±`clip` and divided by each row's norm of `W + F` (docs/plasticity.md).
        Stpn = "stpn",
    }
}

impl CoreKind {
    pub fn is_plastic(self) -> bool {
        matches!(self, Self::PlasticRnn | Self::PlasticLstm)
    }

    pub fn is_lstm(self) -> bool {
        matches!(self, Self::Lstm | Self::PlasticLstm)
    }

    /// Whether the cell carries STPN's fast weights (and none of Backpropamine's traces).
    pub fn is_stpn(self) -> bool {
        self == Self::Stpn
    }
}

config_option! {
    /// Shape of STPN's learned decay λ and gain γ (config key `stp`, kind `stpn` only).
    pub enum StpShape {
        /// One λ and one γ per synapse, `[H × (in + H)]`, as the authors' maze config
        /// (`learn_plastic_weight_params_dims = [0, 1]`).
        #[default]
        PerSynapse = "per-synapse",
        /// One learned λ and one γ for the whole cell: the authors' "scalar STP" ablation.
        Scalar = "scalar",
    }
}

impl StpShape {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// `stp_learned`'s default, for serde's `skip_serializing_if`.
fn is_true(v: &bool) -> bool {
    *v
}

config_option! {
    /// How the Hebbian trace follows co-activity of post- (`h_t`) and pre-synaptic (`h_{t−1}`)
    /// neurons (config key `rule`). Every rule is `Hebb_t[i,j] = keep_i Hebb_{t−1}[i,j] +
    /// s_i h_{t−1}[j]` with `s = r h_t` (the rate r is η, or the modulator's `M_t` under
    /// neuromodulation), clipped at ±c where [`Rule::clipped`] says; a new rule is a
    /// variant here and its formulas in `rules.rs`, the one home of every rule's factors and
    /// their derivatives. Not exhaustive: code outside this crate that matches on rules has
    /// an arm for new ones.
    #[non_exhaustive]
    pub enum Rule {
        /// `rule = "hebb"`: `Hebb_t = clamp(Hebb_{t−1} + η h_t h_{t−1}ᵀ, −c, c)`
        /// (Backpropamine).
        #[default]
        Hebb = "hebb",
        /// `rule = "decay"`: `Hebb_t = (1 − η) Hebb_{t−1} + η h_t h_{t−1}ᵀ` (differentiable
        /// plasticity, ICML 2018).
        Decay = "decay",
        /// `rule = "oja"`: `Hebb_t[i,j] = Hebb_{t−1}[i,j] + η h_t[i] (h_{t−1}[j] − h_t[i]
        /// Hebb_{t−1}[i,j])`.
        Oja = "oja",
        /// `rule = "instar"` (Grossberg's instar): `Hebb_t[i,j] = Hebb_{t−1}[i,j] + η h_t[i]
        /// (h_{t−1}[j] − Hebb_{t−1}[i,j])`: row i moves towards the input pattern `h_{t−1}` as
        /// far as neuron i is active. It is `decay` with the rate gated by the post-synaptic
        /// activity (`keep = 1 − η h_t[i]`), and `oja` with that gate once rather than squared.
        Instar = "instar",
        /// `rule = "bcm"` (BCM-like, fixed threshold):
        /// `Hebb_t[i,j] = clamp(Hebb_{t−1}[i,j] + η h_t[i] (h_t[i] − θ) h_{t−1}[j], −c, c)`
        /// with θ = 1/2: a connection onto a weakly active neuron (`0 < h_t[i] < θ`) is
        /// depressed, onto a strongly active one potentiated. BCM's sliding threshold (θ a
        /// running average of `h_t[i]²`) would need state the cores do not carry.
        Bcm = "bcm",
    }
}

config_option! {
    /// Shape of a learned rate (η, or η_E of the eligibility trace).
    pub enum EtaShape {
        #[default]
        Scalar = "scalar",
        /// One rate per post-synaptic neuron.
        PerNeuron = "per-neuron",
    }
}

config_option! {
    /// Shape of the plasticity coefficients α.
    pub enum AlphaShape {
        /// One α per connection (`H × H`).
        #[default]
        PerConnection = "per-connection",
        /// One α per post-synaptic neuron (`H`); cheaper: one pass over the trace per step.
        PerNeuron = "per-neuron",
    }
}

config_option! {
    /// Whether and how the network sets its own plasticity rate (Backpropamine).
    pub enum Modulation {
        /// Fixed learned rate η.
        None = "none",
        /// The modulator `M_t` replaces η in the rule.
        #[default]
        Simple = "simple",
        /// `Hebb_t = clamp(Hebb_{t−1} + M_t E_{t−1}, −c, c)`,
        /// `E_t = (1 − η_E) E_{t−1} + η_E h_t h_{t−1}ᵀ`.
        Retroactive = "retroactive",
    }
}

config_option! {
    /// Shape of the modulator `M_t = tanh(w_M · h_t + b_M)`.
    pub enum ModulatorShape {
        /// One value per batch element.
        #[default]
        Scalar = "scalar",
        /// One value per post-synaptic neuron through a learned fan-out: `M_t[i] = f_i · m_t`.
        FanOut = "fan-out",
    }
}

config_option! {
    /// Initialisation of the recurrent weights `W`.
    pub enum InitScheme {
        /// `W ~ 0.01 · U[0, 1)` as Backpropamine.
        #[default]
        Backpropamine = "backpropamine",
        /// `W` orthogonal times `gain` (one orthogonal block per LSTM gate).
        Orthogonal = "orthogonal",
        /// At the edge of chaos (docs/spectra.md): `W` orthogonal with gain 1, so the
        /// recurrent Jacobian at the origin has every singular value 1; LSTMs also get a
        /// forget-gate bias of +1, so the cell keeps most of itself from step to step.
        Critical = "critical",
    }
}

/// One recurrent core. Defaults are Backpropamine's maze network: plastic RNN, H = 100,
/// additive Hebb clipped at ±1, scalar η, per-connection α, simple scalar tanh neuromodulation.
///
/// Plasticity keys (`rule`, `eta`, `alpha`, `modulation`, `modulator`, `clip`) only mean
/// something for plastic kinds; a plain `rnn`/`lstm` needs `modulation = "none"` and rejects
/// any other non-default plasticity key, so a setting that would be silently ignored is an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct CoreConfig {
    pub kind: CoreKind,
    /// Number of hidden neurons H.
    pub hidden: usize,
    pub rule: Rule,
    /// Bound c of the clipped additive rules (`hebb`, and `retroactive` modulation), and of
    /// STPN's fast weights.
    pub clip: f64,
    /// Shape of η (modulation `none`) or η_E (modulation `retroactive`).
    pub eta: EtaShape,
    pub alpha: AlphaShape,
    pub modulation: Modulation,
    pub modulator: ModulatorShape,
    pub init: InitScheme,
    /// Gain of the orthogonal initialisation.
    pub gain: f64,
    /// Shape of STPN's λ and γ (kind `stpn`). Left out of saved configs at its default, so
    /// the configs of the other kinds are written as before.
    #[serde(skip_serializing_if = "StpShape::is_default")]
    pub stp: StpShape,
    /// Whether STPN's λ and γ are learned (kind `stpn`); `false` keeps them at their initial
    /// draws, the authors' fixed-λ-and-γ ablation. Snake case like the multi-word keys of the
    /// other sections; left out of saved configs at its default, as `stp`.
    #[serde(rename = "stp_learned", skip_serializing_if = "is_true")]
    pub stp_learned: bool,
    /// Multi-timescale synapses (docs/timescales.md): one `decay` trace per entry, each
    /// with its own learned rate `η_k` (initially `1/τ_k`, τ in steps) and its own `α_k`;
    /// empty (the default, left out of saved configs) is the single trace with `η` = 0.01.
    /// One entry is that single trace with `η` = `1/τ`: the same network, bit for bit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timescales: Vec<f64>,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            kind: CoreKind::PlasticRnn,
            hidden: 100,
            rule: Rule::Hebb,
            clip: 1.0,
            eta: EtaShape::Scalar,
            alpha: AlphaShape::PerConnection,
            modulation: Modulation::Simple,
            modulator: ModulatorShape::Scalar,
            init: InitScheme::Backpropamine,
            gain: 1.0,
            stp: StpShape::PerSynapse,
            stp_learned: true,
            timescales: Vec::new(),
        }
    }
}

/// The most traces per synapse `core.timescales` may ask for: each is a `[B × H × H]` tensor
/// per batch row and step, and has a name of its own in saved states ([`crate::cores::Traces`]).
pub const MAX_TIMESCALES: usize = 8;

/// A core configuration that cannot be built; each variant names the offending key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreConfigError {
    /// The network's encoder cannot read the environment's observations.
    #[error(transparent)]
    Encoder(#[from] crate::encoders::EncoderError),
    #[error("core.hidden = 0: a core needs at least one hidden neuron; set `hidden` to e.g. 100")]
    ZeroHidden,
    #[error("input dimension is 0: a core needs at least one input feature")]
    ZeroInput,
    #[error("the environment has no actions: a policy head needs at least one")]
    ZeroActions,
    #[error(
        "core.clip = {0}: the trace bound must be a finite number > 0 (Backpropamine uses 1.0)"
    )]
    Clip(f64),
    #[error("core.gain = {0}: the orthogonal gain must be a finite number > 0 (e.g. 1.0)")]
    Gain(f64),
    #[error(
        "core.gain = {0} has no effect with init = \"{1}\" (it fixes its own weights' scale); \
         set init = \"orthogonal\" or remove `gain`"
    )]
    GainWithoutOrthogonal(f64, &'static str),
    #[error(
        "core.{key} = \"{value}\" has no effect on kind = \"{kind}\", which has no plastic weights; \
         use kind = \"plastic-rnn\" or \"plastic-lstm\", or set {key} = \"{default}\""
    )]
    PlasticityKeyOnPlainCore {
        key: &'static str,
        value: String,
        kind: &'static str,
        default: String,
    },
    #[error(
        "core.{key} = \"{value}\" is an option of Backpropamine's plastic cores, which kind = \"stpn\" \
         does not have: its fast weights have their own learned decay and gain (see `stp`); \
         set {key} = \"{default}\""
    )]
    PlasticityKeyOnStpn {
        key: &'static str,
        value: String,
        default: String,
    },
    #[error(
        "core.init = \"{0}\" has no effect on kind = \"stpn\", which draws its weights from the \
         STPN authors' ranges (docs/plasticity.md); remove `init`"
    )]
    InitOnStpn(&'static str),
    #[error(
        "core.stp = \"{stp}\" has no effect on kind = \"{kind}\", which has no short-term \
         plasticity; use kind = \"stpn\" or remove `stp`"
    )]
    StpWithoutStpn {
        stp: &'static str,
        kind: &'static str,
    },
    #[error(
        "core.stp_learned = false has no effect on kind = \"{0}\", which has no short-term \
         plasticity decay and gain to hold fixed; use kind = \"stpn\" or remove `stp_learned`"
    )]
    StpLearnedWithoutStpn(&'static str),
    #[error(
        "core.rule = \"{0}\" cannot be combined with modulation = \"retroactive\": the eligibility \
         trace writes into a clipped additive trace; use rule = \"hebb\" or modulation = \"simple\""
    )]
    RetroactiveNeedsHebb(&'static str),
    #[error(
        "core.eta = \"per-neuron\" has no effect with modulation = \"simple\": the modulator sets \
         the plasticity rate; remove `eta` or use modulation = \"none\" or \"retroactive\""
    )]
    EtaWithSimpleModulation,
    #[error(
        "core.modulator = \"fan-out\" has no effect with modulation = \"none\"; \
         use modulation = \"simple\" or \"retroactive\", or modulator = \"scalar\""
    )]
    ModulatorWithoutModulation,
    #[error(
        "core.timescales = {0:?}: each timescale is a number of steps τ ≥ 1 (the trace's rate \
         is 1/τ ≤ 1), and there are 1 to {MAX_TIMESCALES} of them; e.g. timescales = [3, 30, 300]"
    )]
    Timescales(Vec<f64>),
    #[error(
        "core.timescales is set, but its traces follow rule = \"decay\" at learned rates \
         without neuromodulation, and this core has {0}; set kind = \"plastic-rnn\" or \
         \"plastic-lstm\", rule = \"decay\" and modulation = \"none\", or remove `timescales`"
    )]
    TimescalesNeedDecay(String),
}

impl CoreConfigError {
    /// The config key at fault (`None` for input and action counts, which come from the environment).
    pub fn key(&self) -> Option<&'static str> {
        Some(match self {
            Self::ZeroHidden => "hidden",
            // The encoder's message names its own key, `encoder.kind`.
            Self::ZeroInput | Self::ZeroActions | Self::Encoder(_) => return None,
            Self::Clip(_) => "clip",
            Self::Gain(_) | Self::GainWithoutOrthogonal(..) => "gain",
            Self::PlasticityKeyOnPlainCore { key, .. } | Self::PlasticityKeyOnStpn { key, .. } => {
                key
            }
            Self::InitOnStpn(_) => "init",
            Self::StpWithoutStpn { .. } => "stp",
            Self::StpLearnedWithoutStpn(_) => "stp_learned",
            Self::RetroactiveNeedsHebb(_) => "rule",
            Self::EtaWithSimpleModulation => "eta",
            Self::ModulatorWithoutModulation => "modulator",
            Self::Timescales(_) | Self::TimescalesNeedDecay(_) => "timescales",
        })
    }
}

impl CoreConfig {
    /// A plain tanh RNN.
    pub fn rnn(hidden: usize) -> Self {
        Self {
            kind: CoreKind::Rnn,
            hidden,
            modulation: Modulation::None,
            ..Self::default()
        }
    }

    /// A standard LSTM.
    pub fn lstm(hidden: usize) -> Self {
        Self {
            kind: CoreKind::Lstm,
            hidden,
            modulation: Modulation::None,
            ..Self::default()
        }
    }

    /// STPN as the authors' maze config: per-synapse λ and γ, fast weights clipped at ±1.
    pub fn stpn(hidden: usize) -> Self {
        Self {
            kind: CoreKind::Stpn,
            hidden,
            modulation: Modulation::None,
            ..Self::default()
        }
    }

    /// A plastic RNN without neuromodulation (differentiable plasticity).
    pub fn plastic_rnn(hidden: usize, rule: Rule) -> Self {
        Self {
            hidden,
            rule,
            modulation: Modulation::None,
            ..Self::default()
        }
    }

    /// The `H × H` traces the core carries per batch row: the Hebbian trace of a plastic
    /// core, and under retroactive modulation the eligibility trace too; none for a plain one.
    pub fn traces_per_step(&self) -> usize {
        match (self.kind.is_plastic(), self.modulation) {
            (false, _) => 0,
            (true, Modulation::Retroactive) => 2,
            (true, _) => self.timescale_count(),
        }
    }

    /// The traces each synapse keeps, one per timescale: 1 unless `timescales` lists more.
    pub fn timescale_count(&self) -> usize {
        self.timescales.len().max(1)
    }

    /// Where `timescales` is set, one of them outside [1, ∞) or a count outside 1 to
    /// [`MAX_TIMESCALES`], or on a core whose traces do not follow `decay` at a learned rate.
    fn validate_timescales(&self) -> Result<(), CoreConfigError> {
        let t = &self.timescales;
        if t.is_empty() {
            return Ok(());
        }
        if t.len() > MAX_TIMESCALES || t.iter().any(|&tau| !(tau.is_finite() && tau >= 1.0)) {
            return Err(CoreConfigError::Timescales(t.clone()));
        }
        let mismatch = if !self.kind.is_plastic() {
            Some(format!("kind = \"{}\"", self.kind.name()))
        } else if self.rule != Rule::Decay {
            Some(format!("rule = \"{}\"", self.rule.name()))
        } else if self.modulation != Modulation::None {
            Some(format!("modulation = \"{}\"", self.modulation.name()))
        } else {
            None
        };
        mismatch.map_or(Ok(()), |m| Err(CoreConfigError::TimescalesNeedDecay(m)))
    }

    /// The fast weights one batch row carries on `input_dim` inputs: STPN's `H × (in + H)`,
    /// none for the other kinds.
    pub fn fast_weights_per_row(&self, input_dim: usize) -> usize {
        if self.kind.is_stpn() {
            self.hidden * (input_dim + self.hidden)
        } else {
            0
        }
    }

    /// The f32 bytes of one batch row's recurrent state on `input_dim` inputs: hidden
    /// activations (and the LSTM cell) plus the traces or fast weights. For refusing batch
    /// sizes no machine holds.
    pub fn state_bytes_per_row(&self, input_dim: usize) -> f64 {
        let (h, cells) = (
            self.hidden as f64,
            if self.kind.is_lstm() { 2.0 } else { 1.0 },
        );
        let fast = self.fast_weights_per_row(input_dim) as f64;
        (self.traces_per_step() as f64 * h * h + fast + cells * h)
            * std::mem::size_of::<f32>() as f64
    }

    /// Backpropamine's maze network (the default) with `hidden` neurons.
    pub fn backpropamine(hidden: usize) -> Self {
        Self {
            hidden,
            ..Self::default()
        }
    }

    pub fn validate(&self) -> Result<(), CoreConfigError> {
        if self.hidden == 0 {
            return Err(CoreConfigError::ZeroHidden);
        }
        if !(self.clip.is_finite() && self.clip > 0.0) {
            return Err(CoreConfigError::Clip(self.clip));
        }
        if !(self.gain.is_finite() && self.gain > 0.0) {
            return Err(CoreConfigError::Gain(self.gain));
        }
        if self.init != InitScheme::Orthogonal && self.gain != 1.0 {
            return Err(CoreConfigError::GainWithoutOrthogonal(
                self.gain,
                self.init.name(),
            ));
        }
        self.validate_timescales()?;
        if !self.kind.is_stpn() && !self.stp.is_default() {
            return Err(CoreConfigError::StpWithoutStpn {
                stp: self.stp.name(),
                kind: self.kind.name(),
            });
        }
        if !self.kind.is_stpn() && !self.stp_learned {
            return Err(CoreConfigError::StpLearnedWithoutStpn(self.kind.name()));
        }
        if self.kind.is_stpn() && self.init != InitScheme::default() {
            return Err(CoreConfigError::InitOnStpn(self.init.name()));
        }
        if !self.kind.is_plastic() {
            let d = Self::default();
            let checks: [(&'static str, String, String); 6] = [
                (
                    "modulation",
                    self.modulation.name().into(),
                    Modulation::None.name().into(),
                ),
                ("rule", self.rule.name().into(), d.rule.name().into()),
                ("eta", self.eta.name().into(), d.eta.name().into()),
                ("alpha", self.alpha.name().into(), d.alpha.name().into()),
                (
                    "modulator",
                    self.modulator.name().into(),
                    d.modulator.name().into(),
                ),
                ("clip", self.clip.to_string(), d.clip.to_string()),
            ];
            for (key, value, default) in checks {
                // STPN's fast weights are clipped at ±clip too.
                if self.kind.is_stpn() && key == "clip" {
                    continue;
                }
                if value != default && self.kind.is_stpn() {
                    return Err(CoreConfigError::PlasticityKeyOnStpn {
                        key,
                        value,
                        default,
                    });
                }
                if value != default {
                    return Err(CoreConfigError::PlasticityKeyOnPlainCore {
                        key,
                        value,
                        kind: self.kind.name(),
                        default,
                    });
                }
            }
            return Ok(());
        }
        match self.modulation {
            Modulation::Retroactive if self.rule != Rule::Hebb => {
                Err(CoreConfigError::RetroactiveNeedsHebb(self.rule.name()))
            }
            Modulation::Simple if self.eta != EtaShape::Scalar => {
                Err(CoreConfigError::EtaWithSimpleModulation)
            }
            Modulation::None if self.modulator != ModulatorShape::Scalar => {
                Err(CoreConfigError::ModulatorWithoutModulation)
            }
            _ => Ok(()),
        }
    }
}
