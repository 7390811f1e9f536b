//! The page shell every dashboard page shares: inline CSS (light and dark), the one small script (live
//! updates over SSE), the header with the user and logout. Nothing is loaded from anywhere else.

use super::session::Session;
use axum::response::Html;
use maud::{DOCTYPE, Markup, PreEscaped, html};

const CSS: &str = r#"
:root{--bg:#f7f7f8;--fg:#1c1d21;--muted:#62646c;--card:#fff;--line:#dcdde2;--grid:#ececf0;
--c0:#2563eb;--c1:#d9480f;--c2:#2b8a3e;--c3:#9c36b5;--ok:#2b8a3e;--bad:#c92a2a;--hold:#b08800;--accent:#2563eb}
@media (prefers-color-scheme:dark){:root{--bg:#141518;--fg:#e6e6ea;--muted:#a0a2ab;--card:#1d1f24;--line:#34363e;
--grid:#2a2c33;--c0:#74a7ff;--c1:#ff9b5e;--c2:#69db7c;--c3:#e599f7;--ok:#69db7c;--bad:#ff8787;--hold:#ffd43b;--accent:#74a7ff}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
a{color:var(--accent)}header{display:flex;gap:1rem;align-items:center;padding:.6rem 1rem;border-bottom:1px solid var(--line);background:var(--card);flex-wrap:wrap}
header .brand{font-weight:700;text-decoration:none;color:var(--fg)}header .who{margin-left:auto;color:var(--muted)}
main{max-width:1200px;margin:0 auto;padding:1rem}h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:0 0 .6rem}h3{font-size:.95rem;margin:.8rem 0 .4rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.9rem;margin-bottom:1rem;overflow-x:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:1rem}
.muted{color:var(--muted)}.badge{display:inline-block;padding:0 .45rem;border-radius:999px;border:1px solid var(--line);font-size:12px}
.pass{color:var(--ok);border-color:var(--ok)}.fail{color:var(--bad);border-color:var(--bad)}.inconclusive{color:var(--hold);border-color:var(--hold)}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--muted);font-weight:600}
.weights{display:flex;height:14px;border-radius:7px;overflow:hidden;background:var(--grid);margin:.3rem 0}.weights span{display:block;height:100%}
.bg0{background:var(--c0)}.bg1{background:var(--c1)}.bg2{background:var(--c2)}.bg3{background:var(--c3)}
.chart{margin:0}.chart figcaption{font-weight:600;margin-bottom:.2rem}.chart svg{width:100%;height:auto;display:block}
.grid line,.chart .grid{stroke:var(--grid)}.axis{stroke:var(--muted)}.tick{fill:var(--muted);font-size:11px}
.series{fill:none;stroke-width:2;vector-effect:non-scaling-stroke}.dashed{stroke-dasharray:4 3}
.c0{stroke:var(--c0)}.c1{stroke:var(--c1)}.c2{stroke:var(--c2)}.c3{stroke:var(--c3)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:.3rem;border:2px solid}
.swatch.c0{border-color:var(--c0)}.swatch.c1{border-color:var(--c1)}.swatch.c2{border-color:var(--c2)}.swatch.c3{border-color:var(--c3)}
.legend{display:flex;flex-wrap:wrap;gap:.2rem 1rem;font-size:12px;color:var(--muted)}
.threshold{stroke:var(--bad);stroke-dasharray:6 4}.threshold-label{fill:var(--bad);font-size:11px}
.spark{display:inline-flex;align-items:center;gap:.4rem}.spark svg{overflow:visible}.spark-value{font-variant-numeric:tabular-nums;min-width:4.5rem}
ol.steps{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:.4rem}
ol.steps li{border:1px solid var(--line);border-radius:6px;padding:.3rem .55rem;min-width:7rem}
ol.steps li.done{opacity:.65}ol.steps li.done::before{content:"✓ ";color:var(--ok)}ol.steps li.current{border-color:var(--accent);box-shadow:0 0 0 1px var(--accent)}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.6rem}
.btn,button{font:inherit;padding:.35rem .8rem;border-radius:6px;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer;text-decoration:none;display:inline-block}
.btn.danger,button.danger{border-color:var(--bad);color:var(--bad)}button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
input{font:inherit;padding:.35rem .5rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
pre.logs{max-height:320px;overflow:auto;font:12px/1.4 ui-monospace,monospace;background:var(--bg);padding:.5rem;border-radius:6px;margin:0;white-space:pre-wrap;word-break:break-all}
.flash{border-left:4px solid var(--accent)}.error{border-left:4px solid var(--bad)}
#live{font-size:12px}#live.on::before{content:"● ";color:var(--ok)}#live.off::before{content:"● ";color:var(--bad)}
.app-head{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:baseline}
@media (max-width:600px){main{padding:.5rem}.grid{grid-template-columns:1fr}td,th{padding:.25rem}.hide-narrow{display:none}}
"#;

/// Live updates: one EventSource per page (it reconnects by itself). `frag` events carry fresh HTML
/// for elements by id; `log` appends to the log tail; `expired` goes back to the login page.
pub const JS: &str = r#"
(function(){var src=document.body.getAttribute('data-stream');if(!src||!window.EventSource)return;
var live=document.getElementById('live');function mark(on){if(live){live.className=on?'on':'off';live.textContent=on?'live':'reconnecting'}}
var es=new EventSource(src);es.onopen=function(){mark(true)};
es.onerror=function(){mark(false);if(es.readyState===2){setTimeout(function(){location.reload()},2000)}};
es.addEventListener('frag',function(e){var d=JSON.parse(e.data);for(var k in d){var el=document.getElementById(k);if(el)el.innerHTML=d[k]}});
var box=document.getElementById('logtail');
es.addEventListener('logreset',function(){if(box)box.textContent=''});
es.addEventListener('log',function(e){if(!box)return;var end=box.scrollTop+box.clientHeight>=box.scrollHeight-8;
box.textContent+=e.data+'\n';var l=box.textContent.split('\n');if(l.length>400)box.textContent=l.slice(l.length-400).join('\n');
if(end)box.scrollTop=box.scrollHeight});
es.addEventListener('expired',function(){es.close();location.href='/ui/login?expired=1'});})();
"#;

/// A whole page. `stream`: the SSE address that keeps it live.
pub fn page(
    title: &str,
    session: Option<&Session>,
    stream: Option<&str>,
    body: Markup,
) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light dark";
                    title { (title) " · slipway" }
                    style { (PreEscaped(CSS)) }
                }
                body data-stream=[stream] {
                    header {
                        a.brand href="/ui/" { "slipway" }
                        @if stream.is_some() { span #live.off { "connecting" } }
                        @if let Some(s) = session {
                            span.who { (s.name) " · " (s.role.as_str()) }
                            form method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                    main { (body) }
                    @if stream.is_some() { script src="/ui/live.js" {} }
                }
            }
        }
        .into_string(),
    )
}

/// "3 s ago", "2 min ago": relative times read faster during a rollout.
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let s = ((now_ms - then_ms) / 1000).max(0);
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// "1m 05s", "42s".
pub fn duration(ms: i64) -> String {
    let s = (ms.max(0) + 999) / 1000;
    if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_plainly() {
        assert_eq!(ago(0, 3_000), "3 s ago");
        assert_eq!(ago(0, 125_000), "2 min ago");
        assert_eq!(duration(65_000), "1m 05s");
        assert_eq!(duration(1), "1s");
        assert_eq!(duration(-5), "0s");
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let p = page("x", None, Some("/ui/stream/overview"), html! { "hi" }).0;
        assert!(!p.contains("http://") && !p.contains("https://"));
        assert!(p.contains("src=\"/ui/live.js\""));
        assert!(p.contains("data-stream=\"/ui/stream/overview\""));
    }
}
