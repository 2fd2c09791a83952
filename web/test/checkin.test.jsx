import { act, fireEvent, render, renderHook, screen, waitFor } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { json, useFakeFetch } from './fakeFetch.js';
import { FakeSocket, fakeIo } from './fakeSocket.js';
import { SessionContext } from '../src/session.js';
import CheckInPage from '../src/components/CheckInPage.jsx';
import ProjectorView from '../src/components/ProjectorView.jsx';
import Roster from '../src/components/Roster.jsx';
import useSessionRoster from '../src/hooks/useSessionRoster.js';
import { checkInPath, deviceId, normaliseCode } from '../src/checkin.js';

const STUDENT = { id: 'stu-1', name: 'Ann', email: null, role: 'student' };
const TEACHER = { id: 't1', name: 'Tess', email: null, role: 'teacher' };
const STATS = { present: 0, late: 0, absent: 2, excused: 0, total: 2, attendance_rate: 0 };
const SESSION = {
  id: 's1', course_id: 'c1', topic: 'Week 3', status: 'active', check_in_mode: 'code', code_period_seconds: 15,
  allowed_networks: null, started_at: '2024-01-15T10:30:00.000Z', started_by: 'Tess', statistics: STATS,
  records: [{ user_id: 'stu-1', name: 'Ann', status: 'absent', marked_at: null, marked_by: null, remarks: null, audit: null }],
};

function code(value, expiresInMs = 15_000) {
  return {
    session_id: 's1', code: value, period_seconds: 15,
    expires_at: new Date(Date.now() + expiresInMs).toISOString(), check_in_url: checkInPath('s1', value),
  };
}

function as(me, element) {
  return render(<SessionContext.Provider value={{ token: 'tok', me, signOut: () => {} }}>{element}</SessionContext.Provider>);
}

const http = useFakeFetch();

beforeEach(() => window.history.replaceState(null, '', '/'));

describe('the check-in helpers', () => {
  it('keeps one device id per browser and reads codes as the server does', () => {
    const first = deviceId();
    expect(first).toMatch(/^d-[0-9a-f]{24}$/);
    expect(deviceId()).toBe(first);
    expect(normaliseCode(' 7hk-x3m ')).toBe('7HKX3M');
    expect(checkInPath('a b', '7HKX3M')).toBe('/check-in/a%20b?code=7HKX3M');
  });
});

describe('CheckInPage', () => {
  it('sends the code of the QR link at once, then drops it from the address', async () => {
    window.history.replaceState(null, '', '/check-in/s1?code=7hkx3m');
    const posts = [];
    http.mock.mockImplementation((url, init = {}) => {
      if (url === '/api/sessions/s1' && init.method === 'GET') return json(SESSION);
      if (url === '/api/sessions/s1/check-in') {
        posts.push(JSON.parse(init.body));
        return json({ ...SESSION.records[0], status: 'present', marked_at: '2024-01-15T10:31:00.000Z', marked_by: 'stu-1' });
      }
      throw new Error(`unexpected ${url}`);
    });
    as(STUDENT, <CheckInPage sessionId="s1" />);
    await screen.findByText('You are checked in. You can close this page.');
    expect(posts).toEqual([{ code: '7HKX3M', device_id: deviceId() }]);
    expect(window.location.pathname + window.location.search).toBe('/check-in/s1');
    expect(document.querySelector('.my-status [data-status]').dataset.status).toBe('present');
  });

  it('tells the student what to do for each refusal, and sends nothing without a code', async () => {
    const refusals = [
      { detail: 'That check-in code is wrong or has expired', reason: 'code_invalid' },
      { detail: 'Only from the classroom network', reason: 'network_not_allowed' },
    ];
    http.mock.mockImplementation((url, init = {}) => {
      if (url === '/api/sessions/s1' && init.method === 'GET') return json(SESSION);
      if (url === '/api/sessions/s1/check-in') return json(refusals.shift(), 403);
      throw new Error(`unexpected ${url}`);
    });
    as(STUDENT, <CheckInPage sessionId="s1" />);
    const input = await screen.findByLabelText('Code shown in the room');
    const submit = screen.getByRole('button', { name: 'Check in' });

    await act(async () => fireEvent.click(submit));
    expect((await screen.findByRole('alert')).dataset.reason).toBe('code_required');
    expect(http.mock.mock.calls.filter(([url]) => url.endsWith('/check-in'))).toHaveLength(0);

    fireEvent.change(input, { target: { value: 'aaa aaa' } });
    expect(input.value).toBe('AAAAAA');
    await act(async () => fireEvent.click(submit));
    await waitFor(() => expect(screen.getByRole('alert').dataset.reason).toBe('code_invalid'));
    // One sentence that says what happened and what to do, not the server's words beside it.
    expect(screen.getByRole('alert').textContent).toBe(
      'That code is wrong or has expired: type the code on the screen now, or scan the QR code again.',
    );

    await act(async () => fireEvent.click(submit));
    await waitFor(() => expect(screen.getByRole('alert').dataset.reason).toBe('network_not_allowed'));
    expect(screen.getByRole('alert').textContent).toContain("Connect to the classroom's Wi-Fi");
    expect(document.querySelector('.my-status [data-status]').dataset.status).toBe('absent');
  });

  it('says a session has ended instead of offering a check-in', async () => {
    http.mock.mockImplementation(() => json({ ...SESSION, status: 'ended' }));
    as(STUDENT, <CheckInPage sessionId="s1" />);
    expect((await screen.findByRole('alert')).textContent).toContain('This session has ended');
    expect(screen.queryByRole('button', { name: 'Check in' })).toBeNull();
  });
});

describe('useSessionRoster and check-in codes', () => {
  it('keeps the latest code of its own session and the audit of updated records', () => {
    const socket = new FakeSocket('x', {});
    socket.connected = true;
    const { result } = renderHook(() => useSessionRoster(socket, 's1'));
    act(() => socket.serverEmit('checkInCode', code('AAAAAA')));
    act(() => socket.serverEmit('checkInCode', { ...code('CCCCCC'), session_id: 'other' }));
    expect(result.current.checkInCode.code).toBe('AAAAAA');
    act(() => socket.serverEmit('sessionRosterData', { session_id: 's1', status: 'active', statistics: STATS, records: [] }));
    const audit = { how: 'check_in', by: 'stu-1', at: 'x', address: '10.0.0.1', device_id: 'd-1', same_address_as: null, same_device_as: 'stu-2' };
    act(() => socket.serverEmit('attendanceUpdated', { session_id: 's1', user_id: 'stu-1', name: 'Ann', status: 'present', audit, statistics: STATS }));
    expect(result.current.roster.records[0].audit).toEqual(audit);
  });
});

describe('Roster', () => {
  it('shows how and from where, and flags a shared device or address', () => {
    render(
      <Roster
        sessionId="s1"
        records={[
          { user_id: 'u1', name: 'Ann', status: 'present', audit: { how: 'check_in', by: 'u1', address: '10.0.0.1', same_address_as: null, same_device_as: null } },
          { user_id: 'u2', name: 'Bob', status: 'present', audit: { how: 'check_in', by: 'u2', address: '10.0.0.1', same_address_as: 'u1', same_device_as: 'u1' } },
          { user_id: 'u3', name: 'Cy', status: 'absent', audit: null },
        ]}
      />,
    );
    const rows = [...document.querySelectorAll('tbody tr')];
    expect(rows[0].textContent).toContain('Checked in from 10.0.0.1');
    expect(rows[0].querySelector('.badge-flag')).toBeNull();
    expect(rows[1].querySelector('.badge-flag').dataset.flag).toBe('same device as Ann; same address as Ann');
  });
});

describe('ProjectorView', () => {
  it('shows the QR code and the code, rotating with checkInCode, and the live count', async () => {
    http.mock.mockImplementation((url) => {
      if (url === '/api/sessions/s1') return json(SESSION);
      throw new Error(`unexpected ${url}`);
    });
    const ioFactory = fakeIo();
    as(TEACHER, <ProjectorView sessionId="s1" ioFactory={ioFactory} />);
    await waitFor(() => expect(ioFactory.sockets).toHaveLength(1));
    const socket = ioFactory.sockets[0];
    act(() => socket.simulateConnect());
    expect(socket.sentEvents('subscribeToSession')).toEqual([{ session_id: 's1' }]);
    act(() => socket.serverEmit('sessionRosterData', { session_id: 's1', status: 'active', statistics: STATS, records: [] }));
    act(() => socket.serverEmit('checkInCode', code('7HKX3M')));

    const image = await screen.findByRole('img');
    expect(image.dataset.url).toBe(`${window.location.origin}/check-in/s1?code=7HKX3M`);
    expect(image.getAttribute('src')).toMatch(/^data:image\/svg\+xml/);
    expect(document.querySelector('.code').dataset.code).toBe('7HKX3M');
    expect(document.querySelector('.code').textContent).toBe('7HK X3M');
    expect(document.querySelector('.countdown').textContent).toMatch(/^new code in 1[4-6] s$/);

    act(() => socket.serverEmit('checkInCode', code('MNPRTW')));
    await waitFor(() => expect(screen.getByRole('img').dataset.url).toContain('code=MNPRTW'));
    expect(document.querySelector('.code').dataset.code).toBe('MNPRTW');

    act(() => socket.serverEmit('attendanceUpdated', {
      session_id: 's1', user_id: 'stu-1', name: 'Ann', status: 'present', statistics: { ...STATS, present: 1, absent: 1 },
    }));
    expect(document.querySelector('.projector-count').dataset.present).toBe('1');
    // The server's `present` counts late arrivals too: the label says what it counts.
    expect(document.querySelector('.projector-count').textContent).toBe('1 of 2 here (on time or late)');
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Week 3: check in now');

    act(() => socket.serverEmit('sessionRosterData', { session_id: 's1', status: 'ended', statistics: { ...STATS, present: 1, absent: 1 }, records: [] }));
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Week 3: session ended');
    expect(document.querySelector('.projector-count').textContent).toBe('1 of 2 attended (on time or late)');
  });
});
