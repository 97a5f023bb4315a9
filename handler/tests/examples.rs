//! Every file in `examples/` is what it claims to be: specs validate, the image map loads.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use berth::spec::{Format, Mode, parse};

fn example(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_example_specs_validate() {
    let job = parse(&example("job-share.json"), Format::Json, || unreachable!()).unwrap();
    assert_eq!((job.id.as_str(), job.mode), ("transcode-42", Mode::Job));
    let service = parse(
        &example("seed-service.json"),
        Format::Json,
        || unreachable!(),
    )
    .unwrap();
    assert_eq!(service.mode, Mode::Service);
    let pipeline = parse(&example("pipeline.json"), Format::Json, || unreachable!()).unwrap();
    assert_eq!(pipeline.groups[1].instance_count(), 4);
    assert_eq!(pipeline.groups[2].depends_on, vec!["shard"]);
    assert_eq!(service.groups.len(), 3);
    let yaml = parse(&example("aci-job.yaml"), Format::AciYaml, || {
        "from-yaml".into()
    })
    .unwrap();
    assert_eq!(
        (yaml.groups[0].name.as_str(), yaml.mode),
        ("hello-yaml", Mode::Job)
    );
}

#[test]
fn the_example_image_map_loads_and_covers_the_seed_service() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/images.toml");
    let images = emulator::ImageMap::load(&path).unwrap();
    assert!(images.lookup("postgres:15").is_some());
    assert!(images.lookup("nginx:alpine").is_some());
}
