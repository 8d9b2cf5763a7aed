//! `resolve`: an alias on the control plane, now or as of a registry
//! version or a time, with the registry version that answered.

use crate::api::schema::ResolvedSchema;
use crate::ctl::cli::args::ResolveArgs;
use crate::ctl::client::{Client, CtlError, exit, seg};
use crate::ctl::output::Output;

pub(crate) async fn run(client: &Client, out: Output, args: ResolveArgs) -> Result<u8, CtlError> {
    let mut path = format!("/api/aliases/resolve/{}/{}", seg(&args.context), seg(&args.alias));
    if let Some(at) = args.as_of {
        path.push_str(&format!("?as_of={}", seg(&at)));
    }
    let a = client.get(&path).await?;
    if out.is_json() {
        // The version travels in a header; scripts get it in the body.
        let mut body = a.body.clone();
        if let (Some(o), Some(v)) = (body.as_object_mut(), a.version) {
            o.insert("version".into(), v.into());
        }
        out.print(&body, &[]);
    } else {
        let resolved: ResolvedSchema = a.parse()?;
        match a.version {
            Some(v) => println!("{}  (registry version {v})", resolved.canonical_name),
            None => println!("{}", resolved.canonical_name),
        }
    }
    Ok(exit::OK)
}
