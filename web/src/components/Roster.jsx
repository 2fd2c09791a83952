import { useEffect, useState } from 'react';
import { useApi } from '../session.js';
import { STATUS_LABELS, formatTime, statusLabel } from '../format.js';

/**
 * One row's status control: choosing a status saves it at once
 * (PUT /api/sessions/{id}/records/{user_id}); a remark is added on demand.
 */
function StatusControl({ sessionId, record }) {
  const { request } = useApi();
  const [status, setStatus] = useState(record.status);
  const [remarks, setRemarks] = useState(record.remarks ?? '');
  const [editing, setEditing] = useState(false);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState(null);
  const name = record.name || record.user_id;
  const idBase = `override-${sessionId}-${record.user_id}`.replace(/[^A-Za-z0-9_-]/g, '_');
  const path = `/api/sessions/${encodeURIComponent(sessionId)}/records/${encodeURIComponent(record.user_id)}`;

  // Follow the live record when it changes elsewhere (a check-in, another tab).
  useEffect(() => setStatus(record.status), [record.status]);
  useEffect(() => setRemarks(record.remarks ?? ''), [record.remarks]);

  const save = async (body, what) => {
    setBusy(true);
    setMessage(null);
    try {
      await request(path, { method: 'PUT', body });
      setMessage({ kind: 'ok', text: `${what} saved` });
      return true;
    } catch (err) {
      if (err.status !== 401) setMessage({ kind: 'error', text: `${what} not saved: ${err.detail}` });
      return false;
    } finally {
      setBusy(false);
    }
  };

  const changeStatus = async (event) => {
    const next = event.target.value;
    setStatus(next);
    if (!(await save({ status: next }, statusLabel(next)))) setStatus(record.status);
  };

  const saveRemark = async (event) => {
    event.preventDefault();
    if (await save({ status, remarks: remarks.trim() }, 'Remark')) setEditing(false);
  };

  return (
    <div className="override">
      <label htmlFor={`${idBase}-status`} className="visually-hidden">
        Status for {name}
      </label>
      <select id={`${idBase}-status`} name="status" value={status} onChange={changeStatus} disabled={busy}>
        {Object.entries(STATUS_LABELS).map(([value, label]) => (
          <option key={value} value={value}>
            {label}
          </option>
        ))}
      </select>
      {editing ? (
        <form className="remark-form" onSubmit={saveRemark}>
          <label htmlFor={`${idBase}-remarks`} className="visually-hidden">
            Remarks for {name}
          </label>
          <input
            id={`${idBase}-remarks`}
            name="remarks"
            placeholder="Remark"
            maxLength={1000}
            value={remarks}
            onChange={(e) => setRemarks(e.target.value)}
            autoFocus
          />
          <button type="submit" className="small" disabled={busy} aria-label={`Save remark for ${name}`}>
            Save
          </button>
          <button type="button" className="secondary small" onClick={() => setEditing(false)} aria-label={`Cancel remark for ${name}`}>
            Cancel
          </button>
        </form>
      ) : (
        <button type="button" className="secondary small" onClick={() => setEditing(true)} aria-label={`${record.remarks ? 'Edit' : 'Add'} remark for ${name}`}>
          {record.remarks ? 'Edit remark' : 'Add remark'}
        </button>
      )}
      <span className={message?.kind === 'error' ? 'error' : 'hint'} role="status">
        {message?.text ?? ''}
      </span>
    </div>
  );
}

const HOW = { check_in: 'Checked in', teacher_mark: 'Marked by teacher', auto: 'Automatic' };

/** A record's last change, and the flags of its check-in (shared address or device: a hint, not a refusal). */
function Audit({ audit, names }) {
  if (!audit) return '—';
  const who = (id) => names[id] ?? id;
  const flags = [];
  if (audit.same_device_as) flags.push(`same device as ${who(audit.same_device_as)}`);
  if (audit.same_address_as) flags.push(`same address as ${who(audit.same_address_as)}`);
  return (
    <span className="audit">
      {HOW[audit.how] ?? audit.how}
      {audit.address ? ` from ${audit.address}` : ''}
      {flags.length > 0 && (
        <span className="badge badge-flag" data-flag={flags.join('; ')} title="Another student checked in from here: worth a look">
          {' '}⚠ {flags.join('; ')}
        </span>
      )}
    </span>
  );
}

/**
 * A session's records: name, status, time marked, remarks, and (live) a status
 * control. `marked_by` is a user id; `people` (id → name, e.g. the course's
 * teacher) and the roster's own names turn it into a name where one is known.
 */
export default function Roster({ sessionId, records, editable = false, people = {} }) {
  const names = { ...people };
  for (const record of records) if (record.name) names[record.user_id] = record.name;
  const sorted = [...records].sort((a, b) => (a.name || a.user_id).localeCompare(b.name || b.user_id));
  const audited = records.some((record) => record.audit);
  if (sorted.length === 0) return <p className="empty">No students on this session's roster.</p>;
  return (
    <div className="table-wrap">
      <table className="roster">
        <caption className="visually-hidden">Attendance records</caption>
        <thead>
          <tr>
            <th scope="col">Student</th>
            <th scope="col">Status</th>
            <th scope="col">Marked at</th>
            <th scope="col">Marked by</th>
            <th scope="col">Remarks</th>
            {audited && <th scope="col">How, from where</th>}
            {editable && <th scope="col">Change</th>}
          </tr>
        </thead>
        <tbody>
          {sorted.map((record) => (
            <tr key={record.user_id} data-user-id={record.user_id} data-status={record.status}>
              <th scope="row" data-label="Student">
                {record.name || record.user_id}
              </th>
              <td data-label="Status">
                <span className={`badge badge-${record.status}`}>{statusLabel(record.status)}</span>
              </td>
              <td data-label="Marked at">
                {record.marked_at ? <time dateTime={record.marked_at}>{formatTime(record.marked_at)}</time> : '—'}
              </td>
              <td data-label="Marked by">{record.marked_by ? names[record.marked_by] ?? record.marked_by : '—'}</td>
              <td data-label="Remarks">{record.remarks || '—'}</td>
              {audited && (
                <td data-label="How, from where">
                  <Audit audit={record.audit} names={names} />
                </td>
              )}
              {editable && (
                <td data-label="Change">
                  <StatusControl sessionId={sessionId} record={record} />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
