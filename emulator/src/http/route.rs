//! ARM paths → routes. ARM matches its fixed segments without regard to case
//! (`resourcegroups`, `microsoft.containerinstance`), so the emulator parses paths itself rather
//! than through a case-sensitive router.

/// A recognised ARM route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `…/containerGroups/{name}`.
    Group(GroupPath),
    /// `…/containerGroups/{name}/{start|stop|restart}`.
    Action(GroupPath, GroupAction),
    /// `…/containerGroups/{name}/containers/{container}/logs`.
    Logs(GroupPath, String),
    /// `…/containerGroups/{name}/containers/{container}/{exec|attach}`.
    Exec(GroupPath, String),
    /// `…/containerGroups/{name}/outboundNetworkDependenciesEndpoints`.
    OutboundDependencies(GroupPath),
    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerInstance/containerGroups`.
    ListByResourceGroup {
        subscription: String,
        resource_group: String,
    },
    /// `/subscriptions/{sub}/providers/Microsoft.ContainerInstance/containerGroups`.
    ListBySubscription { subscription: String },
    /// `/subscriptions/{sub}/providers/Microsoft.ContainerInstance/locations/{loc}/operations/{id}`.
    Operation {
        subscription: String,
        /// The region.
        location: String,
        /// The operation id.
        id: String,
    },
    /// `/subscriptions/{sub}/providers/Microsoft.ContainerInstance/locations/{loc}/usages`.
    Usages {
        subscription: String,
        /// The region.
        location: String,
    },
}

/// The path of one container group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPath {
    pub subscription: String,
    pub resource_group: String,
    /// The container group.
    pub name: String,
}

/// A POST action on a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupAction {
    Start,
    Stop,
    Restart,
}

/// Parses an ARM path; `None` when it is not one the emulator serves. Empty segments are dropped,
/// as ARM treats `//` as `/`: the generic resources API (`az container export`, `az container
/// create --file`) addresses a group as `…/providers/Microsoft.ContainerInstance//containerGroups/…`,
/// with an empty parent path.
pub fn parse(path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(percent_decode)
        .collect::<Option<_>>()?;
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let is = |index: usize, word: &str| {
        s.get(index)
            .is_some_and(|seg| seg.eq_ignore_ascii_case(word))
    };
    if !is(0, "subscriptions") || s.len() < 2 {
        return None;
    }
    let subscription = s[1].to_string();
    if is(2, "providers") && is(3, "Microsoft.ContainerInstance") {
        return match &s[4..] {
            [groups] if groups.eq_ignore_ascii_case("containerGroups") => {
                Some(Route::ListBySubscription { subscription })
            }
            [locations, location, operations, id]
                if locations.eq_ignore_ascii_case("locations")
                    && operations.eq_ignore_ascii_case("operations") =>
            {
                Some(Route::Operation {
                    subscription,
                    location: location.to_string(),
                    id: id.to_string(),
                })
            }
            [locations, location, usages]
                if locations.eq_ignore_ascii_case("locations")
                    && usages.eq_ignore_ascii_case("usages") =>
            {
                Some(Route::Usages {
                    subscription,
                    location: location.to_string(),
                })
            }
            _ => None,
        };
    }
    let provider = is(2, "resourceGroups")
        && s.len() > 3
        && is(4, "providers")
        && is(5, "Microsoft.ContainerInstance")
        && is(6, "containerGroups");
    if !provider {
        return None;
    }
    let resource_group = s[3].to_string();
    let Some(name) = s.get(7) else {
        return Some(Route::ListByResourceGroup {
            subscription,
            resource_group,
        });
    };
    let group = GroupPath {
        subscription,
        resource_group,
        name: name.to_string(),
    };
    match &s[8..] {
        [] => Some(Route::Group(group)),
        [action] => {
            let action = action.to_ascii_lowercase();
            match action.as_str() {
                "start" => Some(Route::Action(group, GroupAction::Start)),
                "stop" => Some(Route::Action(group, GroupAction::Stop)),
                "restart" => Some(Route::Action(group, GroupAction::Restart)),
                "outboundnetworkdependenciesendpoints" => Some(Route::OutboundDependencies(group)),
                _ => None,
            }
        }
        [containers, container, verb] if containers.eq_ignore_ascii_case("containers") => {
            let verb = verb.to_ascii_lowercase();
            match verb.as_str() {
                "logs" => Some(Route::Logs(group, container.to_string())),
                "exec" | "attach" => Some(Route::Exec(group, container.to_string())),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a decoded `/`.
fn percent_decode(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_string());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = segment.get(index + 1..index + 3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if byte == b'/' {
                return None;
            }
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes a query value (everything but unreserved characters).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CG: &str = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.ContainerInstance/containerGroups";

    fn group() -> GroupPath {
        GroupPath {
            subscription: "sub-1".into(),
            resource_group: "rg-1".into(),
            name: "job".into(),
        }
    }

    #[test]
    fn parses_every_route() {
        assert_eq!(parse(&format!("{CG}/job")), Some(Route::Group(group())));
        assert_eq!(
            parse(&format!("{CG}/job/stop")),
            Some(Route::Action(group(), GroupAction::Stop))
        );
        assert_eq!(
            parse(&format!("{CG}/job/containers/main/logs")),
            Some(Route::Logs(group(), "main".into()))
        );
        assert_eq!(
            parse(CG),
            Some(Route::ListByResourceGroup {
                subscription: "sub-1".into(),
                resource_group: "rg-1".into()
            })
        );
        assert_eq!(
            parse("/subscriptions/s/providers/Microsoft.ContainerInstance/containerGroups"),
            Some(Route::ListBySubscription {
                subscription: "s".into()
            })
        );
        assert_eq!(
            parse(
                "/subscriptions/s/providers/Microsoft.ContainerInstance/locations/westus/operations/abc"
            ),
            Some(Route::Operation {
                subscription: "s".into(),
                location: "westus".into(),
                id: "abc".into()
            })
        );
    }

    #[test]
    fn fixed_segments_match_in_any_case() {
        let path = "/SUBSCRIPTIONS/sub-1/resourcegroups/rg-1/providers/microsoft.containerinstance/CONTAINERGROUPS/job/";
        assert_eq!(parse(path), Some(Route::Group(group())));
    }

    #[test]
    fn an_empty_parent_path_is_the_plain_path() {
        let generic = "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.ContainerInstance//containerGroups/job";
        assert_eq!(parse(generic), Some(Route::Group(group())));
        assert_eq!(
            parse(&format!("{CG}//job//stop")),
            Some(Route::Action(group(), GroupAction::Stop))
        );
    }

    #[test]
    fn unknown_and_malformed_paths_are_none() {
        assert_eq!(parse("/"), None);
        assert_eq!(parse(&format!("{CG}/job/containers/main/shell")), None);
        assert_eq!(parse(&format!("{CG}/job/explode")), None);
        assert_eq!(parse(&format!("{CG}/a%2Fb")), None);
        assert_eq!(parse(&format!("{CG}/a%zz")), None);
        assert_eq!(
            parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/x"),
            None
        );
    }

    #[test]
    fn percent_encoding_round_trips() {
        let value = "rg (1)/job";
        assert_eq!(percent_decode(&percent_encode("rg (1)")).unwrap(), "rg (1)");
        assert!(!percent_encode(value).contains('/'));
    }
}
