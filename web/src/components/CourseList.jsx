import { useState } from 'react';
import useFetched from '../hooks/useFetched.js';
import { useSession } from '../session.js';
import { coursePath, linkHandler } from '../router.js';
import PageHeading from './PageHeading.jsx';
import NewCourseForm from './NewCourseForm.jsx';

const ROLE_LABELS = { teacher: 'You teach this course', admin: 'You administer this course', student: 'Student' };
// A co-manager's `my_role` is `teacher` too; `manager_role` says how (api.md, "Co-teachers").
const MANAGER_LABELS = { teacher: 'You co-teach this course', ta: 'You assist in this course (TA)' };

export default function CourseList() {
  const { me } = useSession();
  const creates = me?.role === 'teacher' || me?.role === 'admin';
  const [archived, setArchived] = useState(false);
  const { data, error: failure } = useFetched(archived ? '/api/courses?include_archived=true' : '/api/courses');
  const courses = data ? (Array.isArray(data) ? data : []) : null;
  const error = failure ? failure.detail ?? String(failure) : null;

  return (
    <section aria-labelledby="courses-title">
      <PageHeading id="courses-title" title="Your courses" />
      {creates && <NewCourseForm />}
      {creates && (
        <label className="archived-toggle">
          <input type="checkbox" checked={archived} onChange={(event) => setArchived(event.target.checked)} /> Show
          archived courses
        </label>
      )}
      {error && <p className="error" role="alert">Could not load your courses: {error}</p>}
      {!courses && !error && <p role="status">Loading…</p>}
      {courses && courses.length === 0 && (
        <p className="empty">You are not in any course yet. Open your course&apos;s join link, or ask your teacher to approve your
          enrollment.</p>
      )}
      {courses && courses.length > 0 && (
        <ul className="course-list">
          {courses.map((course) => (
            <li key={course.id}>
              <a href={coursePath(course.id)} onClick={linkHandler(coursePath(course.id))}>
                <span className="course-code">{course.code}</span>
                <span className="course-title">{course.title}</span>
              </a>
              <span className="hint">
                {course.archived_at ? 'Archived · ' : ''}
                {MANAGER_LABELS[course.manager_role] ?? ROLE_LABELS[course.my_role] ?? course.my_role}
                {course.teacher_name && (course.my_role === 'student' || MANAGER_LABELS[course.manager_role])
                  ? ` · taught by ${course.teacher_name}`
                  : ''}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
