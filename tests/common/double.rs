//! An HTTP double in front of moto: it answers what moto lacks (SimulatePrincipalPolicy,
//! DecodeAuthorizationMessage, an instance's StateReason) with AWS's documented response
//! shapes, injects faults (throttling, 500s, AccessDenied, slowness), and forwards the rest.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the double does with one request.
pub enum Reply {
    /// Pass it to moto and return moto's answer.
    Forward,
    /// Answer with this status, content type and body.
    Respond(u16, &'static str, String),
    /// Wait, then reply.
    Slow(Duration, Box<Reply>),
    /// Pass it to moto and return moto's answer with its body rewritten (a field moto cannot
    /// be made to say, such as a terminated instance's StateReason).
    Rewrite(Box<dyn FnOnce(String) -> String + Send>),
}

/// One request as the double saw it: the operation (`Action=` of the query protocols, the
/// `X-Amz-Target` of the JSON protocols, `METHOD /path` of the REST ones) and the body.
pub struct Call {
    pub operation: String,
    pub body: String,
}

type Route = dyn Fn(&Call) -> Reply + Send + Sync;

pub struct Double {
    pub endpoint: String,
    calls: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Double {
    /// Starts on a free loopback port; `upstream` is moto's endpoint (`http://127.0.0.1:P`).
    pub fn start(upstream: &str, route: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> Double {
        // Through `free_port`, so no server of this process is handed the same port.
        let (listener, port) = std::iter::repeat_with(super::free_port)
            .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok().map(|l| (l, p)))
            .unwrap();
        let upstream = upstream.trim_start_matches("http://").to_string();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let route: Arc<Route> = Arc::new(route);
        let (seen, stopping) = (calls.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (route, seen, upstream) = (route.clone(), seen.clone(), upstream.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &*route, &seen, &upstream);
                });
            }
        });
        Double {
            endpoint: format!("http://127.0.0.1:{port}"),
            calls,
            stop,
            port,
        }
    }

    /// The operations received so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// How many times `operation` was received.
    pub fn count(&self, operation: &str) -> usize {
        self.calls().iter().filter(|c| *c == operation).count()
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves the requests of one connection (keep-alive), one at a time.
fn serve(
    conn: TcpStream,
    route: &Route,
    seen: &Mutex<Vec<String>>,
    upstream: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut writer = conn;
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let end = line == "\r\n";
            head.push(line);
            if end {
                break;
            }
        }
        let header = |name: &str| {
            head.iter().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body_text = String::from_utf8_lossy(&body).to_string();
        // REST protocols (EKS) name the operation by method and path: `GET /clusters/prod/…`.
        let rest = head[0]
            .split(' ')
            .take(2)
            .map(|part| part.split('?').next().unwrap_or(part))
            .collect::<Vec<_>>()
            .join(" ");
        let operation = header("x-amz-target")
            .map(|t| t.rsplit('.').next().unwrap_or(&t).to_string())
            .or_else(|| form_value(&body_text, "Action"))
            .unwrap_or(rest);
        seen.lock().unwrap().push(operation.clone());
        let call = Call {
            operation,
            body: body_text,
        };
        let mut reply = route(&call);
        while let Reply::Slow(wait, then) = reply {
            std::thread::sleep(wait);
            reply = *then;
        }
        match reply {
            Reply::Respond(status, content_type, text) => {
                write!(
                    writer,
                    "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: 7a62c49f-347e-4fc4-9331-6e8eEXAMPLE\r\n\r\n",
                    if status < 400 { "OK" } else { "Error" },
                    text.len()
                )?;
                writer.write_all(text.as_bytes())?;
            }
            Reply::Forward => {
                let answer = forward(upstream, &head, &body)?;
                // moto closes after answering; so does the double.
                writer.write_all(&answer)?;
                return Ok(());
            }
            Reply::Rewrite(rewrite) => {
                let answer = forward(upstream, &head, &body)?;
                let answer = String::from_utf8_lossy(&answer).into_owned();
                let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
                let body = rewrite(body.to_string());
                for line in head.split("\r\n") {
                    let name = line.split(':').next().unwrap_or("");
                    if !name.eq_ignore_ascii_case("content-length")
                        && !name.eq_ignore_ascii_case("transfer-encoding")
                    {
                        write!(writer, "{line}\r\n")?;
                    }
                }
                write!(writer, "Content-Length: {}\r\n\r\n{body}", body.len())?;
                return Ok(());
            }
            Reply::Slow(..) => unreachable!("unwrapped above"),
        }
        writer.flush()?;
    }
}

/// moto's whole answer (head and body) to the request `head` + `body`, on a new connection.
fn forward(upstream: &str, head: &[String], body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    for line in head {
        let name = line.split(':').next().unwrap_or("");
        if !name.eq_ignore_ascii_case("connection") && line != "\r\n" {
            up.write_all(line.as_bytes())?;
        }
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    up.write_all(body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    Ok(answer)
}

/// A form field of a query-protocol body, URL-decoded.
pub fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .to_string()
        })
    })
}

/// IAM's query-protocol error document (`<ErrorResponse>`).
pub fn query_error(status: u16, code: &str, message: &str) -> Reply {
    error_response(
        "https://iam.amazonaws.com/doc/2010-05-08/",
        status,
        code,
        message,
    )
}

/// STS's query-protocol error document (`<ErrorResponse>`).
pub fn sts_error(status: u16, code: &str, message: &str) -> Reply {
    error_response(
        "https://sts.amazonaws.com/doc/2011-06-15/",
        status,
        code,
        message,
    )
}

fn error_response(namespace: &str, status: u16, code: &str, message: &str) -> Reply {
    Reply::Respond(
        status,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{}</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId>\n</ErrorResponse>\n",
            if status >= 500 { "Receiver" } else { "Sender" }
        ),
    )
}

/// EC2's error document (`<Response><Errors>`).
pub fn ec2_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::Respond(
        status,
        "text/xml;charset=UTF-8",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>"
        ),
    )
}

/// The JSON-protocol error of KMS (`__type`).
pub fn json_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::Respond(
        status,
        "application/x-amz-json-1.1",
        format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
    )
}

const RESPONSES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws/responses");

/// A documented response with its `{placeholders}` filled; every placeholder must be.
pub fn response(name: &str, fill: &[(&str, &str)]) -> String {
    let template = std::fs::read_to_string(format!("{RESPONSES}/{name}.xml")).unwrap();
    for part in template.split('{').skip(1) {
        if let Some((word, _)) = part.split_once('}') {
            assert!(
                fill.iter().any(|(k, _)| *k == word),
                "{name}: {{{word}}} not filled"
            );
        }
    }
    fill.iter().fold(template, |text, (k, v)| {
        text.replace(&format!("{{{k}}}"), v)
    })
}

pub fn xml(text: String) -> Reply {
    Reply::Respond(200, "text/xml", text)
}

/// EC2 as AWS answers for the seed-2 story: the NodeClaim's instance died of its AMI's key.
pub fn kms_ec2(call: &Call, key: &str) -> Reply {
    match call.operation.as_str() {
        "DescribeInstances" => xml(response(
            "DescribeInstances",
            &[
                ("account", super::live::ACCOUNT),
                ("instance", "i-0a1b2c3d4e5f60001"),
                ("image", "ami-0a1b2c3d4e5f60718"),
                ("zone", "us-east-1b"),
                ("nodeclaim", "encrypted-7k2lp"),
            ],
        )),
        "DescribeImages" => xml(response(
            "DescribeImages",
            &[
                ("image", "ami-0a1b2c3d4e5f60718"),
                ("owner", super::live::ACCOUNT),
                ("snapshot", "snap-0b1c2d3e4f5a60789"),
            ],
        )),
        "DescribeSnapshots" => xml(response(
            "DescribeSnapshots",
            &[
                ("snapshot", "snap-0b1c2d3e4f5a60789"),
                ("owner", super::live::ACCOUNT),
                ("key", key),
            ],
        )),
        _ => Reply::Forward,
    }
}
