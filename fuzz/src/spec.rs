//! Properties of the spec parser and of secret handling, for any bytes.

use berth::spec::secrets::{SecretSlot, put_secrets, take_secrets};
use berth::spec::{Format, Spec, SpecErrors, parse};

/// The id handed to specs that have none.
const NEW_ID: &str = "fuzz-generated";

/// Parses `body` and checks what must hold either way:
/// - a rejection lists at least one problem, and each names a field and says what is wrong;
/// - an accepted spec survives the checkpoint's serde round trip unchanged, and, written back as
///   JSON, is accepted again as the same spec (normalising is a fixpoint, so a stored spec never
///   turns invalid when it is read or resubmitted).
///
/// Returns the accepted spec.
pub fn check_parse(body: &[u8], format: Format) -> Option<Spec> {
    match parse(body, format, || NEW_ID.to_owned()) {
        Ok(spec) => {
            check_accepted(&spec);
            Some(spec)
        }
        Err(errors) => {
            check_rejected(&errors);
            None
        }
    }
}

fn check_rejected(errors: &SpecErrors) {
    assert!(!errors.0.is_empty(), "a rejection without a problem");
    for error in &errors.0 {
        assert!(
            !error.field.is_empty(),
            "a problem without a field: {error:?}"
        );
        assert!(
            !error.message.is_empty(),
            "a problem without a message: {error:?}"
        );
    }
    assert!(!errors.to_string().is_empty());
}

fn check_accepted(spec: &Spec) {
    assert!(!spec.id.is_empty(), "an accepted spec without an id");
    assert!(!spec.groups.is_empty(), "an accepted spec without groups");
    let stored = serde_json::to_vec(spec).expect("an accepted spec serialises");
    let loaded: Spec = serde_json::from_slice(&stored).expect("a stored spec reads back");
    assert_eq!(&loaded, spec, "the checkpoint round trip changed the spec");
    match parse(&stored, Format::Json, || NEW_ID.to_owned()) {
        Ok(again) => assert_eq!(
            &again, spec,
            "the accepted spec, resubmitted, parses differently"
        ),
        Err(errors) => panic!("the accepted spec, resubmitted, is rejected: {errors:?}"),
    }
    for group in &spec.groups {
        let shape = group.shape();
        assert!(shape.cpu.is_finite() && shape.memory_gb.is_finite());
    }
}

/// For a spec that parses: taking its secrets out leaves none at the places they were taken from,
/// and putting them back (after the JSON round trip they make through sealing) restores every
/// group's properties exactly.
pub fn check_secrets(body: &[u8]) {
    let Ok(original) = parse(body, Format::Json, || NEW_ID.to_owned()) else {
        return;
    };
    let mut stored = original.clone();
    let slots = take_secrets(&mut stored);
    assert_eq!(stored.groups.len(), original.groups.len());
    for slot in &slots {
        let group = stored.groups.get(slot.group).unwrap_or_else(|| {
            panic!(
                "a slot for group {} of {}",
                slot.group,
                original.groups.len()
            )
        });
        assert!(
            group.properties.pointer(&slot.pointer).is_none(),
            "a secret left at {} after it was taken",
            slot.pointer
        );
    }
    let sealed = serde_json::to_vec(&slots).expect("secret slots serialise");
    let opened: Vec<SecretSlot> = serde_json::from_slice(&sealed).expect("secret slots read back");
    assert_eq!(opened, slots, "the secret slots changed through JSON");
    for (index, (group, before)) in stored.groups.iter().zip(&original.groups).enumerate() {
        let mut properties = group.properties.clone();
        put_secrets(&mut properties, index, &opened);
        assert_eq!(
            properties, before.properties,
            "group {index}'s properties differ once the secrets are back"
        );
    }
}
