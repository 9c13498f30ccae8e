//! Network coordinates (Serf's Vivaldi `coordinate.Coordinate` and Consul's
//! `structs.Coordinate`), as stored and rendered.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize, Serializer};

/// The dimensionality of Serf's coordinates.
pub const DIMENSIONS: usize = 8;

/// A Vivaldi coordinate (`serf/coordinate.Coordinate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct Coord {
    #[serde(serialize_with = "go_floats")]
    pub vec: Vec<f64>,
    #[serde(serialize_with = "go_float")]
    pub error: f64,
    #[serde(serialize_with = "go_float")]
    pub adjustment: f64,
    #[serde(serialize_with = "go_float")]
    pub height: f64,
}

impl Coord {
    /// Serf's `NewCoordinate` with its default config: the origin, maximum error, minimum height.
    pub fn origin() -> Coord {
        Coord {
            vec: vec![0.0; DIMENSIONS],
            error: 1.5,
            adjustment: 0.0,
            height: 1.0e-5,
        }
    }

    /// The estimated round trip to `other` in seconds (Serf's `DistanceTo`): the Euclidean
    /// distance plus both heights, plus both adjustments unless that would make it negative.
    pub fn distance_to(&self, other: &Coord) -> f64 {
        let euclid = self
            .vec
            .iter()
            .zip(&other.vec)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        let raw = euclid + self.height + other.height;
        let adjusted = raw + self.adjustment + other.adjustment;
        if adjusted > 0.0 {
            adjusted
        } else {
            raw
        }
    }

    /// Every component finite (Serf's `IsValid`).
    pub fn is_valid(&self) -> bool {
        self.vec.iter().all(|v| v.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }
}

/// Go writes whole floats without a fraction (`0`, not `0.0`).
fn go_float<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

fn go_floats<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    struct F(f64);
    impl Serialize for F {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            go_float(&self.0, s)
        }
    }
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for x in v {
        seq.serialize_element(&F(*x))?;
    }
    seq.end()
}

/// A node's coordinate in a network segment (`structs.Coordinate`).
#[derive(Debug, Clone, PartialEq, Serialize, Encode, Decode)]
#[serde(rename_all = "PascalCase")]
pub struct CoordinateEntry {
    pub node: String,
    pub segment: String,
    pub coord: Coord,
}

impl crate::store::codec::Record for CoordinateEntry {
    const VERSION: u8 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_renders_as_go_does() {
        let json = serde_json::to_string(&Coord::origin()).unwrap();
        assert_eq!(
            json,
            r#"{"Vec":[0,0,0,0,0,0,0,0],"Error":1.5,"Adjustment":0,"Height":0.00001}"#
        );
    }
}
