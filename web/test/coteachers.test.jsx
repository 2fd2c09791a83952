import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { json, useFakeFetch } from './fakeFetch.js';
import CoTeachersPanel from '../src/components/CoTeachersPanel.jsx';
import CourseList from '../src/components/CourseList.jsx';
import LmsPanel from '../src/components/LmsPanel.jsx';
import { SessionContext } from '../src/session.js';

const ME = { id: 't', name: 'Grace', email: null, role: 'teacher' };
const http = useFakeFetch();

function withSession(children) {
  return <SessionContext.Provider value={{ token: 'tok', me: ME, signOut: () => {} }}>{children}</SessionContext.Provider>;
}

const COURSE = { id: 'cs101', code: 'CS101', title: 'Computing', teacher_id: 't', my_role: 'teacher' };
const OWNER = { course_id: 'cs101', user_id: 't', name: 'Grace', email: null, role: 'owner', added_at: '' };
const TIM = { course_id: 'cs101', user_id: 'tim', name: 'Tim', email: null, role: 'ta', added_at: '' };

describe('CoTeachersPanel', () => {
  it('lets the owner add, re-role and remove co-teachers', async () => {
    let managers = [OWNER];
    const calls = [];
    http.mock.mockImplementation((url, init = {}) => {
      calls.push([init.method ?? 'GET', url, init.body]);
      if (init.method === 'PUT') {
        const body = JSON.parse(init.body);
        const id = decodeURIComponent(url.split('/').at(-1));
        const known = managers.find((m) => m.user_id === id);
        managers = [...managers.filter((m) => m.user_id !== id), { ...TIM, user_id: id, role: body.role, name: body.name ?? known?.name ?? id }];
        return json(managers.at(-1), 201);
      }
      if (init.method === 'DELETE') {
        managers = managers.filter((m) => m.user_id !== 'tim');
        return Promise.resolve(new Response(null, { status: 204 }));
      }
      return json(managers);
    });
    render(withSession(<CoTeachersPanel course={{ ...COURSE, manager_role: 'owner' }} />));
    await screen.findByText(/Teacher \(owner\)/);
    fireEvent.change(screen.getByLabelText('User id'), { target: { value: 'tim' } });
    fireEvent.change(screen.getByLabelText('Name (optional)'), { target: { value: 'Tim' } });
    fireEvent.change(screen.getByLabelText('Role'), { target: { value: 'ta' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add' }));
    await screen.findByText('Tim is a teaching assistant now.');
    expect(calls).toContainEqual(['PUT', '/api/courses/cs101/managers/tim', JSON.stringify({ role: 'ta', name: 'Tim' })]);
    fireEvent.click(await screen.findByRole('button', { name: 'Make co-teacher' }));
    await screen.findByText('Tim is a co-teacher now.');
    vi.spyOn(window, 'confirm').mockReturnValue(true);
    fireEvent.click(await screen.findByRole('button', { name: 'Remove Tim' }));
    await screen.findByText('Tim no longer teaches CS101.');
    await waitFor(() => expect(screen.queryByText(/Tim \(/)).toBeNull());
  });

  it('shows a co-teacher the list without the controls', async () => {
    http.mock.mockImplementation(() => json([OWNER, TIM]));
    render(withSession(<CoTeachersPanel course={{ ...COURSE, manager_role: 'ta' }} />));
    await screen.findByText(/· Teaching assistant/);
    expect(screen.queryByRole('button', { name: 'Add' })).toBeNull();
    expect(screen.queryByRole('button', { name: /Remove/ })).toBeNull();
  });
});

describe('CourseList', () => {
  it('says how a co-manager takes part, and who teaches the course', async () => {
    http.mock.mockImplementation(() =>
      json([
        { ...COURSE, teacher_name: 'Grace', manager_role: 'ta' },
        { ...COURSE, id: 'ma1', code: 'MA1', teacher_name: 'Emmy', manager_role: 'teacher' },
        { ...COURSE, id: 'ph1', code: 'PH1', teacher_name: 'Grace', manager_role: 'owner' },
      ]),
    );
    render(withSession(<CourseList />));
    await screen.findByText('You assist in this course (TA) · taught by Grace');
    screen.getByText('You co-teach this course · taught by Emmy');
    screen.getByText('You teach this course');
  });
});

describe('LmsPanel', () => {
  it('says what the last sync changed among the co-teachers', async () => {
    const sync = { at: '2024-09-02T08:01:12.000Z', members: 6, added: 1, changed: 1, removed: 1, unchanged: 3, instructors: 3 };
    http.mock.mockImplementation(() =>
      json({ linked: true, roster_sync: true, grades: false, last_sync: { ...sync, managers_added: 2, managers_removed: 1 } }),
    );
    render(withSession(<LmsPanel courseId="cs101" />));
    const text = await screen.findByTestId('lms-last-sync');
    await waitFor(() => expect(text.textContent).toMatch(/1 added, 1 removed, 0 changed; co-teachers: 2 added or changed, 1 removed\.$/));
  });
});
