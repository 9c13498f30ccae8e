//! `JsonValue`: a free-form JSON field (Consul's `map[string]interface{}` members such as a
//! proxy's `Config`) stored inside bincode records as JSON text.

use bincode::de::Decoder;
use bincode::enc::Encoder;
use bincode::error::{DecodeError, EncodeError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonValue(pub serde_json::Value);

impl JsonValue {
    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }
}

impl bincode::Encode for JsonValue {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        bincode::Encode::encode(&self.0.to_string(), encoder)
    }
}

impl<C> bincode::Decode<C> for JsonValue {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let text: String = bincode::Decode::decode(decoder)?;
        serde_json::from_str(&text)
            .map(JsonValue)
            .map_err(|e| DecodeError::OtherString(format!("stored JSON field: {e}")))
    }
}

bincode::impl_borrow_decode!(JsonValue);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_through_bincode() {
        let v = JsonValue(serde_json::json!({"a": [1, "b", null], "c": {"d": true}}));
        let bytes = bincode::encode_to_vec(&v, bincode::config::standard()).unwrap();
        let (back, _): (JsonValue, _) =
            bincode::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, v);
    }
}
