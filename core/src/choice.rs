//! The user's choices among a fixed set (an optimiser, an activation, a fusion rule, ...): each
//! an enum whose values are listed (`ALL`), named as configs and the command line write them
//! (`name`, serde's kebab-case name), labelled as people read them (`label`) and parsed back
//! (`from_name`). The app's option lists and the messages come from here, so no list of
//! options is typed twice, and no UI shows Rust's Debug text.

use crate::error::{Result, WsaError};

/// What [`choices!`](crate::choices) gives an enum, for code generic over choices (the app's
/// option lists).
pub trait Choice: Copy + PartialEq + 'static {
    /// What is being chosen, for messages ("fusion rule").
    const WHAT: &'static str;
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    fn label(self) -> &'static str;

    /// The value named `name`; an unknown name is refused with the list of known ones.
    fn parse(name: &str) -> Result<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name.trim()).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
            let choose = match known.as_slice() {
                [a, b] => format!("unknown {}; choose {a} or {b}", Self::WHAT),
                _ => format!("unknown {}; choose one of {}", Self::WHAT, known.join(", ")),
            };
            WsaError::invalid(Self::WHAT, format!("`{name}`"), &choose)
        })
    }
}

/// Gives a field-less enum its `ALL`, `name`, `label` and `from_name`, and the [`Choice`] trait:
/// `choices!(Enum, "what" { Variant => "name", "label", ... })`. The names must be serde's
/// (a test of each enum checks it).
#[macro_export]
macro_rules! choices {
    ($ty:ident, $what:literal { $($variant:ident => $name:literal, $label:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: [$ty; $crate::choices!(@count $($variant)+)] = [$($ty::$variant),+];

            /// As configs and the command line write it.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// As people read it.
            pub fn label(self) -> &'static str {
                match self {
                    $($ty::$variant => $label),+
                }
            }

            pub fn from_name(name: &str) -> $crate::error::Result<Self> {
                <Self as $crate::choice::Choice>::parse(name)
            }
        }

        impl $crate::choice::Choice for $ty {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &$ty::ALL;

            fn name(self) -> &'static str {
                $ty::name(self)
            }

            fn label(self) -> &'static str {
                $ty::label(self)
            }
        }
    };
    (@count) => { 0usize };
    (@count $head:ident $($tail:ident)*) => { 1usize + $crate::choices!(@count $($tail)*) };
}

#[cfg(test)]
mod tests {
    use super::Choice;

    /// Every value's name is the one serde writes, and reads back.
    fn names_are_serdes<T: Choice + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug>() {
        for &value in T::ALL {
            let json = serde_json::to_string(&value).expect("serialises");
            assert_eq!(json, format!("\"{}\"", value.name()), "{}", T::WHAT);
            let back: T = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, value);
            assert_eq!(T::parse(value.name()).ok(), Some(value));
            assert!(!value.label().is_empty());
        }
        let refused = T::parse("no-such-thing").expect_err("unknown").to_string();
        assert!(refused.contains("no-such-thing") && refused.contains(T::ALL[0].name()), "{refused}");
    }

    #[test]
    fn every_choice_is_named_as_serde_names_it() {
        names_are_serdes::<crate::model::Activation>();
        names_are_serdes::<crate::model::Initializer>();
        names_are_serdes::<crate::train::OptimizerKind>();
        names_are_serdes::<crate::scope::FusionRule>();
        names_are_serdes::<crate::wsa::KlDirection>();
        names_are_serdes::<crate::wsa::LayerReduction>();
        names_are_serdes::<crate::experiment::curve::CurveKind>();
        names_are_serdes::<crate::experiment::method::Training>();
        names_are_serdes::<crate::experiment::method::Alignment>();
        names_are_serdes::<crate::experiment::connect::Endpoint>();
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_known_ones() {
        use crate::experiment::federated::AggregationKind;
        use crate::experiment::reproduce::Metric;
        let two = AggregationKind::from_name("fedsgd").expect_err("unknown").to_string();
        assert!(two.contains("`fedsgd`") && two.contains("choose fedavg or fedprox"), "{two}");
        let many = Metric::from_name("barrier").expect_err("unknown").to_string();
        assert!(many.contains("choose one of accuracy_a, accuracy_b,"), "{many}");
        assert_eq!(Metric::from_name(" loss_barrier ").ok(), Some(Metric::LossBarrier));
    }
}
