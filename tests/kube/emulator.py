"""A tiny Kubernetes API server double for the kube-rs end-to-end tests, built on kmock's KubernetesEmulator.
Usage: emulator.py PORT (0 = any free port): prints `READY <port>` once it accepts connections, serves until killed.
$KARPENTER_VERSION (default v1) is the version Karpenter's groups are served at (v1beta1: Karpenter 0.3x)."""
# Added to kmock: resourceVersion/uid/creationTimestamp/generation, server-side apply that creates, /status,
# PUT, label/field selectors, paginated lists (limit/continue, pages from one snapshot), watches resumed from a resourceVersion, pod logs that tests feed (POST
# /_test/logs/NS/POD?time=RFC3339 appends the body's lines; DELETE ends the followers, as a container
# exit would), and a request log: `METHOD /path?query` per request, appended to $KMOCK_REQUEST_LOG.
import asyncio
import bisect
import collections
import contextlib
import copy
import datetime as dt
import functools
import json
import os
import re
import sys
import types
import uuid

import aiohttp.web
import attrs
import kmock
from kmock import action

VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']  # no deletecollection: not served
KARPENTER = os.environ.get('KARPENTER_VERSION', 'v1')
RESOURCES = {  # group/version/plural: (kind, namespaced, subresources)
    f'karpenter.sh/{KARPENTER}/nodeclaims': ('NodeClaim', False, []),
    f'karpenter.sh/{KARPENTER}/nodepools': ('NodePool', False, []),
    f'karpenter.k8s.aws/{KARPENTER}/ec2nodeclasses': ('EC2NodeClass', False, []),
    'karpenter-doctor.io/v1alpha1/diagnoses': ('Diagnosis', False, ['status']),
    'events.k8s.io/v1/events': ('Event', True, []),
    'coordination.k8s.io/v1/leases': ('Lease', True, []),
    'v1/pods': ('Pod', True, ['log']),
    'v1/serviceaccounts': ('ServiceAccount', True, []),
}
PODS = kmock.resource('v1/pods')
now = functools.partial(dt.datetime.now, dt.timezone.utc)


def rfc3339(t, nano=False):  # nano: as Go's time.RFC3339Nano, trailing zeros of the fraction dropped
    frac = f'{t.microsecond:06d}000'.rstrip('0') if nano else ''
    return t.strftime('%Y-%m-%dT%H:%M:%S') + (f'.{frac}' if frac else '') + 'Z'


def parse_time(text):
    return dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)


def matches(selector, get):
    """A Kubernetes label/field selector: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b)."""
    for term in filter(None, (t.strip() for t in re.split(r',(?![^()]*\))', selector or ''))):
        if m := re.fullmatch(r'(\S+)\s+(in|notin)\s+\((.*)\)', term):
            if (get(m[1]) in {v.strip() for v in m[3].split(',')}) != (m[2] == 'in'):
                return False
        elif m := re.fullmatch(r'([^!=\s]+)\s*(!=|==|=)\s*(.*)', term):
            if (get(m[1]) == m[3]) == (m[2] == '!='):
                return False
        elif (get(term[1:]) is not None) if term.startswith('!') else (get(term) is None):
            return False
    return True


def field(obj, path):  # a field selector's value: the dotted path into the object, as a string
    for part in path.split('.'):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return None if obj is None else str(obj).lower() if isinstance(obj, bool) else str(obj)


class Emulator(kmock.KubernetesEmulator):
    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.rv = 0  # the last resourceVersion handed out: one per write event
        self.events = []  # (rv, resource, event) of every write, for watches resumed from any rv
        self.stamps = {}  # (resource, namespace, name) -> [uid, creationTimestamp, generation, spec]
        self.keys = collections.defaultdict(dict)  # resource -> its objects' keys, in creation order
        self.snapshots = {}  # continue token's first part -> (resourceVersion, items) of a paginated list
        self.logs = {}  # (namespace, pod) -> {'lines': [(time, text)], 'closed': bool}
        self.changed = asyncio.Event()  # set, and replaced by a new one, at each write or log line
        self.writes = asyncio.Lock()  # one write at a time: events go out in resourceVersion order
        self._buses = _Recorder()  # kmock puts each write event there: stamp and record it
        self._requests = _History()  # kmock matches each request against all it ever served: quadratic
        self._buses.record = self._record
        self[re.compile(r'/_test/logs/[^/]+/[^/]+')] << self._feed_log
        self['get', re.compile(r'/api/v1/namespaces/[^/]+/pods/[^/]+/log')] << self._serve_log

    async def _render_error(self, exc):  # kube-rs tells errors by their reason: is_not_found() is "NotFound"
        status = json.loads((await super()._render_error(exc)).body)
        status['reason'] = 'AlreadyExists' if status['reason'] == 'Object Already Exists' else \
            {400: 'BadRequest', 404: 'NotFound', 409: 'Conflict', 410: 'Expired', 422: 'Invalid'}.get(status['code'], 'InternalError')
        return aiohttp.web.json_response(status, status=status['code'])

    async def _serve_version(self, request):  # fixed: the core groupVersion is "v1" (kmock: "/v1"); verbs
        result = await super()._serve_version(request)
        result['groupVersion'] = result['groupVersion'].lstrip('/')
        for resource in result['resources']:
            if '/' in resource['name']:
                resource['verbs'] = ['get'] if resource['name'].endswith('/log') else ['get', 'patch', 'update']
        return result

    def _wake(self):
        self.changed.set()
        self.changed = asyncio.Event()

    async def _record(self, resource, event):
        """Called by kmock for each ADDED/MODIFIED/DELETED: stamps the stored object in place."""
        self.rv += 1
        obj = event['object'] if event['type'] != 'DELETED' else copy.deepcopy(event['object'])
        meta = obj.setdefault('metadata', {})
        key = (resource, meta.get('namespace'), meta.get('name'))
        if event['type'] == 'ADDED' or key not in self.stamps:
            self.stamps[key] = [str(uuid.uuid4()), rfc3339(now()), 1, copy.deepcopy(obj.get('spec'))]
        elif event['type'] == 'MODIFIED' and obj.get('spec') != self.stamps[key][3]:
            self.stamps[key][2:] = [self.stamps[key][2] + 1, copy.deepcopy(obj.get('spec'))]
        self.keys[resource][key] = None
        meta['uid'], meta['creationTimestamp'], meta['generation'], _ = self.stamps[key]
        meta['resourceVersion'] = str(self.rv)
        self.events.append((self.rv, resource, copy.deepcopy(dict(event, object=obj))))
        self._wake()

    async def _handle(self, request):
        try:
            return await self._dispatch(request)
        finally:
            self._requests.served(request)

    async def _dispatch(self, request):
        if path := os.environ.get('KMOCK_REQUEST_LOG'):
            with open(path, 'a') as f:
                f.write(f'{request.method.value} {request.url.raw_path_qs}\n')
        res = request.resource
        if res is not None and res.plural is not None and request.subresource != 'log':  # not discovery, logs
            if res not in self.resources or (request.namespace and not self.resources[res].namespaced):
                raise kmock.KubernetesResourceNotFoundError()
            if request.action in (action.CREATE, action.UPDATE, action.DELETE) or request.method == 'PUT':
                async with self.writes:
                    return await super()._handle(self._prepare(request))
        return await super()._handle(request)

    def _prepare(self, request):
        """Turns a write into one kmock does: SSA that creates, /status, PUT, resourceVersion preconditions."""
        key, data, act = (request.resource, request.namespace, request.name), request.data, request.action
        info, put, status = self.resources[key[0]], request.method == 'PUT', request.subresource == 'status'
        current = self._objects[key] if key in self._objects and not self._objects[key].deleted else None
        content_type = next((v for k, v in request.headers.items() if k.lower() == 'content-type'), '')
        if put and (current is None or not isinstance(data, dict)):
            raise kmock.KubernetesObjectNotFoundError()
        if act == action.UPDATE and current is None and not status and content_type.startswith('application/apply'):
            act = action.CREATE  # server-side apply creates a missing object
        if not isinstance(data, dict):  # a JSON patch, or a body that is no object
            if act == action.CREATE:
                raise kmock.KubernetesError(400, 'BadRequest', 'the body must be a JSON object')
        elif act == action.CREATE or put and not status:  # a whole object: kind, name, namespace by the URL
            data.update(self._type(key[0]))
            meta = data.setdefault('metadata', {})
            meta['name'] = request.name or meta.get('name') or meta.get('generateName') and \
                meta['generateName'] + uuid.uuid4().hex[:5]
            if not meta['name']:
                raise kmock.KubernetesError(422, 'Invalid', 'metadata.name or generateName is required')
            namespace = meta.pop('namespace', None)
            if info.namespaced:
                meta['namespace'] = request.namespace or namespace or 'default'
        if isinstance(data, dict) and current is not None and act != action.DELETE:
            wanted = (data.get('metadata') or {}).get('resourceVersion')
            if wanted and wanted != current['metadata'].get('resourceVersion'):
                raise kmock.KubernetesError(409, 'Conflict', 'the object has been modified; '
                                            'please apply your changes to the latest version and try again')
            if status:  # only .status changes
                data = {k: v for k, v in data.items() if k == 'status'}
                data = dict(copy.deepcopy(current.raw), status=data.get('status')) if put else data
            elif 'status' in info.subresources:  # the main resource leaves .status alone
                data = {k: v for k, v in data.items() if k != 'status'}
                data.update({'status': current['status']} if put and 'status' in current else {})
        elif isinstance(data, dict) and act == action.CREATE and 'status' in info.subresources:
            data.pop('status', None)
        if put:  # replace the whole object: a JSON patch of the root
            act, data = action.UPDATE, [{'op': 'replace', 'path': '', 'value': data}]
        # kmock serves only the requests it recorded (by identity): swap the recorded one for ours
        self._requests[request.id] = attrs.evolve(request, action=act, data=data)
        return self._requests[request.id]

    def _KubernetesEmulator__get_objs(self, request, strict):  # kmock scans every object: look the name up
        key = (request.resource, request.namespace, request.name)
        if request.name is None or not strict and request.namespace is None:
            return super()._KubernetesEmulator__get_objs(request, strict)
        return [self._objects[key]] if key in self._objects else []

    def _selected(self, request, obj):
        meta, params = obj.get('metadata') or {}, request.params
        return (request.namespace in (None, meta.get('namespace')) and request.name in (None, meta.get('name'))
                and matches(params.get('labelSelector'), (meta.get('labels') or {}).get)
                and matches(params.get('fieldSelector'), lambda path: field(obj, path)))

    def _list(self, request):  # the live objects a list or watch selects (not copies)
        objects = (self._objects[key] for key in self.keys[request.resource] if key in self._objects)
        return [obj.raw for obj in objects if not obj.deleted and self._selected(request, obj.raw)]

    def _type(self, resource):
        api_version = f'{resource.group}/{resource.version}'.lstrip('/')
        return {'apiVersion': api_version, 'kind': self.resources[resource].kind}

    async def _serve_list(self, request):
        """Paginated as the real one: later pages come from a snapshot taken at the first, whose
        resourceVersion every page carries; `continue` is `<snapshot>:<offset>`."""
        kind, params = self._type(request.resource), request.params
        limit = int(params['limit']) if params.get('limit', '').isdigit() else 0
        if params.get('continue'):
            m = re.fullmatch(r'(\d+):(\d+)', params['continue'])
            if not m:
                raise kmock.KubernetesError(400, 'BadRequest', 'invalid continue token')
            if m[1] not in self.snapshots:
                raise kmock.KubernetesError(410, 'Expired', 'the continue token has expired')
            (rv, items), offset = self.snapshots[m[1]], int(m[2])
        else:
            rv, items, offset = str(self.rv), copy.deepcopy(self._list(request)), 0
        end = offset + limit if limit and offset + limit < len(items) else len(items)
        meta = {'resourceVersion': rv}
        if end < len(items):
            token = params.get('continue', '').split(':')[0] or str(len(self.snapshots) + 1)
            self.snapshots.setdefault(token, (rv, items))
            meta['continue'] = f'{token}:{end}'
        return dict(kind, kind=kind['kind'] + 'List', metadata=meta, items=items[offset:end])

    async def _serve_watch(self, request):
        yield b''  # send the headers now
        params, loop = request.params, asyncio.get_running_loop()
        rv, initial_events = params.get('resourceVersion', ''), params.get('sendInitialEvents') == 'true'
        since = int(rv) if rv.isdigit() and rv != '0' else self.rv
        if rv in ('', '0') or initial_events:  # as the real one: the current objects come first as ADDED
            for obj in copy.deepcopy(self._list(request)):
                yield {'type': 'ADDED', 'object': obj}
            if initial_events:  # kube-runtime's streaming list waits for this bookmark
                yield {'type': 'BOOKMARK', 'object': dict(self._type(request.resource), metadata={
                    'resourceVersion': str(since), 'annotations': {'k8s.io/initial-events-end': 'true'}})}
        deadline = loop.time() + float(params.get('timeoutSeconds') or 'inf')
        index = bisect.bisect_right(self.events, since, key=lambda e: e[0])
        while True:
            changed = self.changed
            for _, res, event in self.events[index:]:
                index += 1
                if res == request.resource and self._selected(request, event['object']):
                    yield event
            try:
                await asyncio.wait_for(changed.wait(), min(deadline - loop.time(), 1e9))
            except asyncio.TimeoutError:
                return

    def _pod_log(self, request):
        ns, name = request.url.path.split('/')[-2:] if request.resource is None else (request.namespace, request.name)
        return self.logs.setdefault((ns, name), {'lines': [], 'closed': False})

    async def _feed_log(self, request):  # POST appends lines, DELETE ends the followers
        log, t = self._pod_log(request), request.params.get('time')
        t = parse_time(t) if t else now()
        log['lines'] += [(t, line) for line in request.text.splitlines()] if request.method == 'POST' else []
        log['closed'] = request.method == 'DELETE'
        self._wake()
        return {'lines': len(log['lines']), 'closed': log['closed']}

    async def _serve_log(self, request):
        key, params = (PODS, request.namespace, request.name), request.params
        if key[1:] not in self.logs and (key not in self._objects or self._objects[key].deleted):
            raise kmock.KubernetesObjectNotFoundError()
        since = params.get('sinceTime') or params.get('sinceSeconds')
        since = (parse_time(since) if 'sinceTime' in params else
                 now() - dt.timedelta(seconds=int(since)) if since else None)
        follow = params.get('follow') == 'true'
        stream = self._log_lines(self._pod_log(request), since, params.get('timestamps') == 'true',
                                 int(params.get('tailLines', 1 << 62)), follow)
        return kmock.Response(payload=stream if follow else b''.join([x async for x in stream]),
                              headers={'Content-Type': 'text/plain'})

    async def _log_lines(self, log, since, stamped, tail, follow):
        def render(lines):  # the kubelet's format: with timestamps=true, an RFC3339Nano one first
            return b''.join(f'{rfc3339(t, nano=True) + " " if stamped else ""}{text}\n'.encode()
                            for t, text in lines if since is None or t >= since)
        changed, index = self.changed, len(log['lines'])
        lines = [(t, text) for t, text in log['lines'] if since is None or t >= since]
        yield render(lines[len(lines) - min(len(lines), tail):])  # even if empty: it sends the headers
        while follow and not log['closed']:
            await changed.wait()
            changed, lines, index = self.changed, log['lines'][index:], len(log['lines'])
            yield render(lines)


class _History(list):
    """kmock's request history, where its reactions look for the request at hand (by identity): it keeps
    every request, for ids and indexing, but shows only those not yet served, so that a lookup costs the
    number of requests in flight, not the number ever served (kmock's own is quadratic over a run)."""

    def __init__(self):
        super().__init__()
        self.pending = {}

    def append(self, request):
        super().append(request)
        self.pending[request.id] = request

    def __setitem__(self, index, request):  # the shims swap a request for a rewritten one (same id)
        super().__setitem__(index, request)
        self.pending[request.id] = request

    def __iter__(self):
        return iter(list(self.pending.values()))

    def served(self, request):
        self.pending.pop(request.id, None)


class _Recorder(dict):  # stands in for kmock's per-resource event buses, of which it only calls .put(event)
    def __missing__(self, resource):
        return types.SimpleNamespace(put=functools.partial(self.record, resource))


async def main(port):
    emulator = Emulator()
    for path, (kind, namespaced, subresources) in RESOURCES.items():
        emulator.resources[path] = kmock.ResourceInfo(
            kind=kind, singular=kind.lower(), namespaced=namespaced, verbs=VERBS, subresources=subresources)
    async with emulator, kmock.Server(emulator, host='127.0.0.1', port=port) as server:
        print(f'READY {server.port}', flush=True)
        await asyncio.Event().wait()


if __name__ == '__main__':
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit('usage: emulator.py PORT  (0 = any free port)')
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1])))
